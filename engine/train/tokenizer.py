"""The character-level tokenizer every shipped model shares.

A real ``tokenizers`` tokenizer (BPE with no merges is exactly one token per
character), wrapped as a ``PreTrainedTokenizerFast`` so ``AutoTokenizer`` loads
it like any hub tokenizer.
"""
from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
CHARS = string.ascii_letters + string.digits + " \n.,?!:;+-*/=#$%()'\"\\{}_<>"


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(dict.fromkeys(CHARS)))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<bos>", eos_token="<eos>")
    fast.model_max_length = 512
    return fast
