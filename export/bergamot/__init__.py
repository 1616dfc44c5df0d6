"""Bergamot / Marian models (``model.*.bin`` + SentencePiece vocab + lexical shortlist) into Parley packs."""
