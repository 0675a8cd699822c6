"""Clean: the seed's site boilerplate, Unicode repair, repeated lines, HTML and Markdown, short documents."""

import random

import ftfy
import polars as pl

from tasks.clean import CleanOptions, boilerplate_lines, clean_documents, strip_boilerplate, text_hash
from tasks.ingest import discover, read_inputs
from tasks.normalize import (FTFY_CONFIG, fix_text, ftfy_fixed, html_main_text, markdown_text, normalize_inputs,
                             text_lines, unwrap)


def cleaned(folder) -> tuple[pl.DataFrame, pl.DataFrame]:
    inputs, _, _ = read_inputs(discover(str(folder)))
    normalized = normalize_inputs(inputs)
    return clean_documents(normalized, boilerplate_lines(normalized, CleanOptions()), CleanOptions())


def test_seed_loses_site_header_and_glued_source_trailer(tmp_path, seed_text):
    (tmp_path / "seed.txt").write_text(seed_text, encoding="utf-8")
    documents, rejects = cleaned(tmp_path)
    assert rejects.height == 0
    doc = documents.row(0, named=True)
    assert doc["title"] == "US General: Our forces remain in Iraq, and Al-Kazemi needs support"
    assert doc["boilerplate"] == ["Rawabet Center", "In Rawabet Center", "Source"]
    assert doc["text"].startswith("A senior US official praised Iraqi Prime Minister")
    assert doc["text"].endswith("from Hezbollah and other militia groups.")
    assert "Rawabet" not in doc["text"] and "\xa0" not in doc["text"]
    assert doc["language"] == "en"
    assert doc["sentence_count"] == 13
    assert doc["word_count"] == len(doc["text"].split()) - doc["text"].count("–")
    assert len(doc["minhash"]) == CleanOptions().num_perm


def test_fix_text_repairs_mojibake_and_odd_spaces_but_keeps_curly_quotes():
    broken = "Itâ€™s a\u00a0test\u200b of\u2003spaces\r\nand “quotes”"
    assert fix_text(broken) == "It’s a test of spaces\nand “quotes”"


def test_ftfy_fixed_is_ftfys_fix_text(seed_text):
    """The ASCII lines it keeps without calling ftfy are those ftfy would keep: every ASCII character in and around
    entities, HTML (after which ftfy leaves entities alone), mojibake and line breaks, and random mixes of them."""
    pieces = [chr(code) for code in range(128)] + ["Ã©", "â€™", "\u00a0", "&amp;", "&#x2019;", "<b>", "\r\n", "\n",
                                                   "\x1b[31m", "ﬁ", "Ｌ", "\u2028", "\x85", "Â", "é", "“"]
    texts = [seed_text] + [template.format(c) for c in map(chr, range(128))
                           for template in ("{}", "a{}b", "x{0}\n{0}y\n", "&amp;{}\n<p>\n&amp;", "Itâ€™s{}\n&lt;")]
    generator = random.Random(7)
    texts += ["".join(generator.choice(pieces) for _ in range(generator.randint(1, 40))) for _ in range(3000)]
    for text in texts:
        assert ftfy_fixed(text) == ftfy.fix_text(text, FTFY_CONFIG), repr(text)


def test_lines_repeated_across_a_sources_documents_are_boilerplate():
    lines = [["Daily Planet", f"Story number {i} begins here.", "Share this article", f"It ends {i}."]
             for i in range(5)]
    frame = pl.DataFrame({"source": ["planet"] * 5, "input_id": [str(i) for i in range(5)], "lines": lines})
    repeated = boilerplate_lines(frame, CleanOptions())
    assert repeated == {"planet": {"daily planet", "share this article"}}
    title, body, removed = strip_boilerplate(lines[0], repeated["planet"], None)
    assert body == ["Story number 0 begins here.", "It ends 0."]
    assert removed == ["Daily Planet", "Share this article"]
    assert title is None


def test_a_line_in_few_documents_is_not_boilerplate():
    lines = [["Quoted line", f"Story {i}."] for i in range(2)] + [[f"Story {i}."] for i in range(2, 30)]
    frame = pl.DataFrame({"source": ["s"] * 30, "input_id": [str(i) for i in range(30)], "lines": lines})
    assert boilerplate_lines(frame, CleanOptions()) == {}


def test_header_block_keeps_longest_line_as_title_and_trailing_chrome_goes():
    lines = ["Site", "Big news: the river flooded the old town", "By Staff", "The river rose overnight.",
             "Water reached the square by dawn.", "Advertisement", "Read more"]
    title, body, removed = strip_boilerplate(lines, set(), None)
    assert title == "Big news: the river flooded the old town"
    assert body == ["The river rose overnight.", "Water reached the square by dawn."]
    assert removed == ["Site", "By Staff", "Advertisement", "Read more"]


def test_an_abbreviation_at_the_end_is_not_taken_for_a_trailer():
    _, body, removed = strip_boilerplate(["The talks began.", "Troops were sent by the U.S. Army"], set(), None)
    assert body[-1] == "Troops were sent by the U.S. Army" and removed == []


def test_html_main_text_drops_navigation_and_footer():
    html = ("<html><head><title>Harbour plan</title></head><body><nav>Home | News</nav><article>"
            "<h1>Harbour plan</h1><p>The harbour plan was approved after a long debate in the council.</p>"
            "<p>Work starts next month and should take two years to finish.</p></article>"
            "<footer>Copyright 2026</footer></body></html>")
    title, text = html_main_text(html)
    assert title == "Harbour plan"
    assert "The harbour plan was approved" in text and "Copyright" not in text and "Home | News" not in text


def test_markdown_heading_is_the_title_and_markup_goes():
    title, text = markdown_text("# Library reopens\n\nThe **library** opened [today](http://x.test).\n")
    assert title == "Library reopens"
    assert "The library opened today." in text


def test_one_sentence_and_boilerplate_only_documents_are_rejects_with_reasons(tmp_path):
    (tmp_path / "one.txt").write_text("Only one sentence lives here.")
    documents, rejects = cleaned(tmp_path)
    assert documents.height == 0
    assert rejects.select("reason", "stage").row(0) == ("too_short", "clean")
    assert "1 sentence(s)" in rejects["detail"][0]
    assert rejects["text"][0] == "Only one sentence lives here."


def test_text_hash_ignores_case_spacing_and_punctuation():
    assert text_hash("Hello,  World!") == text_hash("hello world") != text_hash("hello worlds")


def test_a_story_scraped_three_times_with_tiny_differences_keeps_its_headline():
    lead = ("The city council said on Monday that the new bridge, which cost {}5 million, would open next week "
            "after years of delay.")
    copies = [["Bridge opens at last", lead.format(mark), "Residents welcomed the news with cheers and a small parade."]
              for mark in ("$", "£", "$ ")]
    copies[1][1] = copies[1][1].replace(",", "")
    others = [["Other story", f"Story number {n} is about something else entirely and goes on for many more words."]
              for n in range(7)]
    frame = pl.DataFrame({"source": ["site"] * 10, "input_id": [str(n) for n in range(10)],
                          "lines": copies + others})
    assert "bridge opens at last" not in boilerplate_lines(frame, CleanOptions()).get("site", set())


BODY = ["Heavy rain fell on the coast overnight, and the river burst its banks before dawn.",
        "Officials said the damage would take months to repair."]


def test_a_date_line_or_byline_under_the_headline_is_never_the_title():
    for chrome in ("Published Monday 9 March 2026", "By Amira Haddad | 5 May 2026", "Updated: 2026-03-09 14:02",
                   "March 9, 2026"):
        title, body, removed = strip_boilerplate(["Storm floods the coast", chrome, *BODY], set(), None)
        assert title == "Storm floods the coast", chrome
        assert body == BODY and removed == [chrome]


def test_a_question_that_opens_the_text_is_its_headline():
    title, body, removed = strip_boilerplate(["Will the bridge ever open?", "Published Monday 9 March 2026", *BODY],
                                             set(), None)
    assert title == "Will the bridge ever open?"
    assert body == BODY and removed == ["Published Monday 9 March 2026"]
    title, body, _ = strip_boilerplate(["Flood defences held!", *BODY], set(), None)
    assert title == "Flood defences held!" and body == BODY


def test_a_question_inside_the_text_stays_in_the_body():
    lines = [BODY[0], "What happens next?", BODY[1]]
    title, body, _ = strip_boilerplate(lines, set(), None)
    assert title is None and body == lines


def test_a_first_paragraph_without_a_full_stop_stays_in_the_body():
    paragraph = "The city council voted on Tuesday to close the old bridge for repairs after engineers found cracks"
    title, body, removed = strip_boilerplate(["Rawabet Center", "Council closes the old bridge", paragraph, *BODY],
                                             set(), None)
    assert title == "Council closes the old bridge"
    assert body == [paragraph, *BODY] and removed == ["Rawabet Center"]
    long_headline = "Police Officer Who Saved Six Children From A Burning School Bus Is Honoured By The Queen Today"
    title, body, _ = strip_boilerplate(["Rawabet Center", long_headline, *BODY], set(), None)
    assert title == long_headline and body == BODY


def test_a_headline_with_a_date_in_it_stays_the_headline():
    title, body, removed = strip_boilerplate(["Council sets the vote for 5 May 2026", "Monday 9 March 2026 14:02 GMT",
                                              *BODY], set(), None)
    assert title == "Council sets the vote for 5 May 2026" and removed == ["Monday 9 March 2026 14:02 GMT"]


def test_a_known_trailer_glued_to_an_unpunctuated_last_line_goes():
    title, body, removed = strip_boilerplate([*BODY, "The full report is out now Source"], set(), None)
    assert body == [*BODY, "The full report is out now"] and removed == ["Source"]


def test_text_hard_wrapped_at_72_columns_keeps_its_first_line_and_its_headline():
    import textwrap

    paragraphs = [" ".join(BODY) * 2, "The mayor said the town would rebuild, and that help was on its way from the "
                                      "capital, where ministers met late into the night to agree on the funds."]
    wrapped = "Storm floods the coast\n\n" + "\n\n".join(textwrap.fill(p, 72) for p in paragraphs) + "\n"
    title, body, _ = strip_boilerplate(text_lines(unwrap(fix_text(wrapped))), set(), None)
    assert title == "Storm floods the coast"
    assert body == paragraphs
