"""Fixed 64-bit hashes of tokens and shingles, vectorised with numpy over a whole batch.

These functions define the checkpoint format: a signature stored today must equal the one
computed for the same text after any restart or library upgrade, so nothing here depends on a
library's hash (Python's ``hash`` is salted per process, datasketch's and rensa's are theirs
to change). The constants below are frozen; changing any of them is a new HASH_SCHEME.

- mix64: the SplitMix64 finaliser (a bijection on 64-bit words with full avalanche).
- token hash: the token's UTF-8 bytes in 8-byte little-endian chunks, zero-padded:
  ``h = mix64(chunk[0] ^ length * TOKEN_SEED)``, then ``h = mix64(h ^ chunk[i])`` for the rest. Tokens longer than LONG_TOKEN bytes
  (base64 blobs, minified code) are hashed with BLAKE2b-64 instead, one at a time, so a rare
  long token cannot turn the vectorised loop into hundreds of passes.
- shingle hash: ``mix64(sum_i token_hash[i] * SHINGLE_MUL[i])`` over the shingle's tokens.
"""
from __future__ import annotations

import hashlib

import numpy as np

HASH_SCHEME = "splitmix64-chunk8-v1"
LONG_TOKEN = 64
TOKEN_SEED = np.uint64(0x9E3779B97F4A7C15)
EMPTY_SHINGLE = np.uint64(0x2545F4914F6CDD1D)   # the shingle of a text without tokens
PAD_TOKEN = np.uint64(0x5851F42D4C957F2D)       # stands for missing tokens of a short text
SHINGLE_MUL = np.array([0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB,
                        0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F,
                        0xCA5A826395121157, 0x9E3779B97F4A7C55], dtype=np.uint64)
MAX_SHINGLE = len(SHINGLE_MUL)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(z: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """SplitMix64 finaliser, elementwise; works in place on a uint64 array it owns (``scratch``,
    if given, is a uint64 array of the same shape it may overwrite: one allocation less)."""
    t = np.right_shift(z, _S30, out=scratch)
    z ^= t
    z *= _M1
    np.right_shift(z, _S27, out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, _S31, out=t)
    z ^= t
    return z


def mix64_int(z: int) -> int:
    """The same on one Python int (reference and seeds)."""
    mask = (1 << 64) - 1
    z &= mask
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & mask
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def token_hash_reference(token: str) -> int:
    """One token's hash, in plain Python: the definition the vectorised code must match."""
    data = token.encode("utf-8")
    if len(data) > LONG_TOKEN:
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    h = mix64_int(int.from_bytes(data[:8], "little") ^ (len(data) * int(TOKEN_SEED)))
    for i in range(8, len(data), 8):
        h = mix64_int(h ^ int.from_bytes(data[i:i + 8], "little"))
    return h


def shingle_hash_reference(token_hashes: list[int], size: int) -> int:
    """One shingle's hash from its token hashes (PAD_TOKEN fills a short text's shingle)."""
    mask = (1 << 64) - 1
    padded = list(token_hashes) + [int(PAD_TOKEN)] * (size - len(token_hashes))
    acc = sum(h * int(m) for h, m in zip(padded, SHINGLE_MUL)) & mask
    return mix64_int(acc)


def token_bytes(raw: np.ndarray) -> np.ndarray:
    """Which bytes of a normalised buffer belong to tokens: ASCII [0-9_a-z] and every byte of
    a multi-byte character (normalise leaves only word characters outside ASCII). Comparisons,
    because a 256-entry table lookup is 5x slower."""
    is_token = (raw - np.uint8(97)) < 26
    is_token |= (raw - np.uint8(48)) < 10
    is_token |= raw == 95
    is_token |= raw >= 128
    return is_token


def tokenise(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of a NUL-separated batch buffer, and the document each token belongs to."""
    token_hash, offsets = tokenise_offsets(buf)
    return token_hash, np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def tokenise_offsets(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of a NUL-separated batch buffer, and where each document's tokens start:
    document d owns tokens ``offsets[d]:offsets[d + 1]`` (``len(offsets)`` = documents + 1)."""
    # One NUL before and eight after: token runs always open and close inside the array, and
    # an 8-byte load at any token byte stays inside it.
    raw = np.frombuffer(b"\x00" + buf + bytes(8), dtype=np.uint8)
    is_token = token_bytes(raw)
    edges = np.flatnonzero(is_token[1:] != is_token[:-1])
    edges += 1
    starts, ends = edges[0::2], edges[1::2]          # runs open and close alternately
    separators = np.flatnonzero(raw[1:len(buf) + 1] == 0)
    separators += 1
    offsets = np.empty(len(separators) + 2, dtype=np.int64)
    offsets[0], offsets[-1] = 0, len(starts)
    offsets[1:-1] = np.searchsorted(starts, separators)
    return hash_tokens(raw, starts, ends), offsets


# Indexed by a token's length (capped at LONG_TOKEN: longer tokens are re-hashed with BLAKE2b):
# the mask that keeps its first min(length, 8) bytes of a little-endian load, and length * TOKEN_SEED.
_FIRST_BYTES = np.array([(1 << (8 * min(n, 8))) - 1 for n in range(LONG_TOKEN + 1)], dtype=np.uint64)
_LENGTH_SEED = np.array([(n * int(TOKEN_SEED)) & ((1 << 64) - 1) for n in range(LONG_TOKEN + 1)],
                        dtype=np.uint64)


def hash_tokens(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Token hashes; ``raw`` must have 8 readable bytes after the last token."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint64)
    lengths = ends - starts
    # An unaligned little-endian uint64 view: words[i] is the 8 bytes starting at byte i.
    # (Index it, never ``take`` from it: take first copies the whole view contiguously.)
    words = np.ndarray((len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    # First chunk of every token at once, its length folded in (two small-table lookups
    # instead of a shift, a subtraction and a multiplication per token).
    capped = np.minimum(lengths, LONG_TOKEN)
    h = words[starts]
    h &= _FIRST_BYTES.take(capped)
    h ^= _LENGTH_SEED.take(capped)
    mix64(h)
    # Further chunks only for the few tokens longer than 8 bytes.
    idx = np.flatnonzero(lengths > 8)
    if not len(idx):
        return h
    rest = lengths[idx]
    too_long = rest > LONG_TOKEN
    if too_long.any():
        for i in idx[too_long].tolist():
            data = raw[starts[i]:ends[i]].tobytes()
            h[i] = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
        idx, rest = idx[~too_long], rest[~too_long]
    offset = 8
    while len(idx):
        rest -= 8                                    # bytes left from this chunk on
        chunk = words[starts[idx] + offset]
        chunk &= _FIRST_BYTES.take(np.minimum(rest, 8))
        chunk ^= h[idx]
        h[idx] = mix64(chunk)
        offset += 8
        more = rest > 8
        idx, rest = idx[more], rest[more]
    return h


def shingle_hashes(token_hash: np.ndarray, doc: np.ndarray, n_docs: int, size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``size``-token shingle that stays inside one document, with its
    document; a document shorter than ``size`` tokens gives one padded shingle, an empty one
    the EMPTY_SHINGLE."""
    counts = np.bincount(doc, minlength=n_docs) if len(doc) else np.zeros(n_docs, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    sh, sh_doc = batch_shingles(token_hash, offsets, size, trash=n_docs)
    inside = sh_doc != n_docs
    return sh[inside], sh_doc[inside]


def batch_shingles(token_hash: np.ndarray, offsets: np.ndarray, size: int, trash: int,
                   first_doc: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a batch and the document of each (numbered from ``first_doc``).

    Every window of ``size`` consecutive tokens of the batch is hashed, the few that cross a
    document boundary included: those are given the document number ``trash`` (cheaper than
    taking them out). A document shorter than ``size`` tokens gives one padded shingle, an
    empty one the EMPTY_SHINGLE.
    """
    if not 1 <= size <= MAX_SHINGLE:
        raise ValueError(f"shingle size must be between 1 and {MAX_SHINGLE}, not {size}")
    n_docs = len(offsets) - 1
    n_tok = len(token_hash)
    counts = np.diff(offsets)
    out_h, out_doc = [], []
    if n_tok >= size:
        n_sh = n_tok - size + 1
        acc = token_hash[:n_sh] * SHINGLE_MUL[0]
        term = np.empty_like(acc)
        for i in range(1, size):
            np.multiply(token_hash[i:i + n_sh], SHINGLE_MUL[i], out=term)
            acc += term
        out_h.append(mix64(acc, term))
        doc = np.repeat(np.arange(first_doc, first_doc + n_docs), counts)[:n_sh]
        if size > 1:
            # Windows starting in the last size - 1 token positions before a document's first
            # token end in a later document.
            cross = (offsets[1:-1, None] - np.arange(1, size)[None, :]).ravel()
            doc[cross[(cross >= 0) & (cross < n_sh)]] = trash
        out_doc.append(doc)
    if n_docs and counts.min() < size:
        short = np.flatnonzero((counts > 0) & (counts < size))
        if len(short):
            first = offsets[short]
            acc = np.zeros(len(short), dtype=np.uint64)
            for i in range(size):
                present = i < counts[short]
                part = np.where(present, token_hash[np.minimum(first + i, n_tok - 1)], PAD_TOKEN)
                acc += part * SHINGLE_MUL[i]
            out_h.append(mix64(acc))
            out_doc.append(short + first_doc)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            out_h.append(np.full(len(empty), EMPTY_SHINGLE, dtype=np.uint64))
            out_doc.append(empty + first_doc)
    if not out_h:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    if len(out_h) == 1:
        return out_h[0], out_doc[0]
    return np.concatenate(out_h), np.concatenate(out_doc).astype(np.int64)
