"""Token ids and attention masks from a BERT-style WordPiece vocabulary file (``vocab.txt``,
one token per line), for TFRecord exports; nothing is downloaded.

Lower-cases, splits on white space and punctuation, then splits each word into the longest
vocabulary pieces (continuations prefixed ``##``); ``[CLS]`` ... ``[SEP]``, padded with
``[PAD]`` to a fixed length.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class Vocabulary:
    def __init__(self, tokens: list[str], lowercase: bool = True) -> None:
        self.ids = {t: i for i, t in enumerate(tokens)}
        missing = [s for s in SPECIALS if s not in self.ids]
        if missing:
            raise ValueError(f"the vocabulary lacks {', '.join(missing)}")
        self.lowercase = lowercase

    @classmethod
    def from_file(cls, path: Path, lowercase: bool = True) -> Vocabulary:
        try:
            tokens = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
        except OSError as exc:
            raise ValueError(f"cannot read vocabulary {path}: {exc.strerror}") from None
        return cls([t for t in tokens if t], lowercase)

    def words(self, text: str) -> list[str]:
        if self.lowercase:
            text = unicodedata.normalize("NFD", text.lower())
            text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, current = [], []
        for char in text:
            if char.isspace():
                if current:
                    out.append("".join(current))
                    current = []
            elif unicodedata.category(char).startswith("P") or char in "$+<=>^`|~":
                if current:
                    out.append("".join(current))
                    current = []
                out.append(char)
            else:
                current.append(char)
        if current:
            out.append("".join(current))
        return out

    def pieces(self, word: str) -> list[int]:
        unk = self.ids["[UNK]"]
        if len(word) > 100:
            return [unk]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    found = self.ids[piece]
                    break
                end -= 1
            if found is None:
                return [unk]
            out.append(found)
            start = end
        return out

    def encode(self, text: str, max_length: int = 128) -> tuple[list[int], list[int]]:
        """(token ids, attention mask), both ``max_length`` long."""
        ids = [self.ids["[CLS]"]]
        for word in self.words(text):
            ids.extend(self.pieces(word))
        ids = ids[: max_length - 1] + [self.ids["[SEP]"]]
        mask = [1] * len(ids)
        padding = max_length - len(ids)
        return ids + [self.ids["[PAD]"]] * padding, mask + [0] * padding
