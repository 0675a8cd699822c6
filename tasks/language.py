"""Language identification, sentence splitting and word tokenisation that ship their models.

sumy's own Tokenizer needs NLTK's punkt data, which is a download at run time; sentencex (rules for ~300
languages) and py3langid (model inside the wheel) need none, so every stage here works offline.
"""

import re
from dataclasses import dataclass

import py3langid
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
# py3langid walks every byte in Python: 1,000 characters name the language as 4,000 did on the dev corpora.
LANGUAGE_SAMPLE_CHARS = 1000


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, from py3langid's bundled model."""
    code, _score = py3langid.classify(text[:LANGUAGE_SAMPLE_CHARS])
    return code


def known_language(code: str) -> bool:
    """Whether `code` is a language py3langid's model knows (it loads the model)."""
    return code in py3langid.langid._get_identifier().nb_classes


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_count(text: str) -> int:
    """Words as a reader counts them: white-space separated pieces with a letter or digit ("5,000" is one)."""
    return sum(1 for piece in text.split() if any(ch.isalnum() for ch in piece))


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
