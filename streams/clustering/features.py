"""Featurisation of a curated event into one L2-normalised dense vector.

Three blocks, each normalised on its own, weighted, concatenated and normalised again (so the
dot product of two vectors is a weighted mix of three cosine similarities):

- structure: tool namespaces and names, argument keys, JSON keys of the response, the shape of
  the response (json / prose / empty) and coarse lengths, hashed into ``struct_dim`` signed
  buckets;
- terms: hashed, sublinear term weights of the prompt's template skeleton (unigrams and
  bigrams, slot values abstracted to markers such as <HOST>);
- text: the MiniLM sentence embedding of the skeleton (optional; cached on the skeleton).

The featuriser has no learned state, so a snapshot only needs its config to rebuild it.
"""
from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .encoder import MINILM_DIM, MiniLMEncoder
from .items import ClusterItem
from .skeleton import skeleton

_WORD = re.compile(r"<[A-Z]+>|[a-z][a-z'-]*[a-z]|[a-z]")
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)
# Function words and courtesy carry no task information but appear in every family.
STOPWORDS = frozenset(
    "a an the and or of to in on for at by with from as is are be been was were it its this that "
    "these those i me my we our you your he she they them their his her do does did can could "
    "would should will shall may might must have has had not no so if then than there here what "
    "which who whom when where why how all any some just also too very please pls thanks thank "
    "thx ty cheers hi hello hey team kindly quick one ok okay again re retry".split()
)


# A reply of at least this many words with no command in it is an answer in prose; shorter
# ones (error texts, escalations, refusals: 8-20 words) say nothing about what was asked.
PROSE_ANSWER_WORDS = 40


def stable_hash(token: str) -> int:
    """Process-independent 32-bit hash (Python's hash() is salted per process)."""
    return zlib.crc32(token.encode("utf-8"))


@dataclass(frozen=True)
class FeaturizerConfig:
    text: str = "minilm"            # "minilm" | "none"
    struct_dim: int = 128
    terms_dim: int = 512
    # Block weights (measured, docs/clustering.md): structure outweighs the prompt when an
    # event has tools/JSON; with MiniLM the hashed terms are a light complement to it.
    w_struct: float = 1.5
    w_terms: float = 0.5
    w_text: float = 1.0
    quantize: bool = True           # int8 dynamic quantisation (per-channel) of MiniLM's linear layers
    max_length: int = 64            # MiniLM tokens; the head of a prompt names the task
    # 2: per-channel int8 weights (closer to fp32: mean cosine 0.977 vs 0.950) and token-count
    # batching. A v1 state still loads; it is then fed the v2 encoder's slightly moved vectors.
    # 3: the structure block describes the command asked for (argument / JSON keys), never how
    # the reply went (tool present or not, prose, error text, lengths); a reply without a
    # command leaves the block empty, which the clusterer reads as unknown (see model.py).
    # v1/v2 states load and keep their own tokens.
    version: int = 3

    @classmethod
    def hashed(cls) -> "FeaturizerConfig":
        """No neural encoder: structure + hashed terms only (~10x faster, see the docs)."""
        return cls(text="none", w_terms=1.0)

    @property
    def dim(self) -> int:
        return self.struct_dim + self.terms_dim + (MINILM_DIM if self.text == "minilm" else 0)

    @property
    def name(self) -> str:
        """The `featurizer` field of a ClusterSnapshot: enough to rebuild the featuriser."""
        q8 = ("-q8pc" if self.version >= 2 else "-q8") if self.quantize else ""
        text = f"+minilm-l6-v2{q8}-len{self.max_length}" if self.text == "minilm" else ""
        return (f"v{self.version}:struct{self.struct_dim}x{self.w_struct:g}"
                f"+terms{self.terms_dim}x{self.w_terms:g}{text}x{self.w_text:g}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeaturizerConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def prompt_terms(skel: str) -> list[str]:
    """Content words of a skeleton (markers kept: <HOST> says a host name was there)."""
    return [w for w in _WORD.findall(skel) if w not in STOPWORDS]


def _length_bucket(n: int) -> int:
    return int(math.log2(n + 1))


def _json_keys(obj: object, prefix: str, out: list[str], depth: int = 0) -> None:
    if depth > 2:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(f"{prefix}{k}")
            _json_keys(v, f"{prefix}{k}.", out, depth + 1)
    elif isinstance(obj, list) and obj:
        _json_keys(obj[0], prefix, out, depth + 1)


_UNPARSED = object()


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return _UNPARSED


def _calls(item: ClusterItem) -> list[dict]:
    """The event's tool calls (at most 8) as dicts; [] when absent or unreadable."""
    calls = _loads(item.tool_calls) if item.tool_calls else None
    if isinstance(calls, dict):
        calls = [calls]
    return [c for c in calls[:8] if isinstance(c, dict)] if isinstance(calls, list) else []


def _call_args(call: dict) -> dict | None:
    fn = call.get("function")    # OpenAI style nests name and arguments under "function"
    args = call.get("arguments", fn.get("arguments") if isinstance(fn, dict) else None)
    if isinstance(args, str):
        args = _loads(args)
    return args if isinstance(args, dict) else None


def _reply_object(response: str) -> dict | None:
    """The first JSON object in a reply (bare, fenced or after a line of prose), if any."""
    match = _JSON_OBJECT.search(response)
    parsed = _loads(match.group(0)) if match else None
    return parsed if isinstance(parsed, dict) else None


def _keys_of(obj: object) -> list[str]:
    found: list[str] = []
    _json_keys(obj, "", found)
    return found


def command_tokens(item: ClusterItem) -> list[str]:
    """The keys of the command an event asked for, wherever the reply put it (tool-call
    arguments or a JSON reply: the same set either way), as a set. Tool names, reply shape and
    outcome are left out: a task is what was asked, and the same ask answered with or without a
    tool call, or not at all (an error, an escalation), must not look like another task."""
    keys: set[str] = set()
    for call in _calls(item):
        args = _call_args(call)
        if args is not None:
            keys.update(_keys_of(args))
    reply = _reply_object(item.response or "")
    if reply is not None:
        keys.update(_keys_of(reply))
    if not keys and len((item.response or "").split()) >= PROSE_ANSWER_WORDS:
        # An explanation was asked for (errors and escalations are shorter: they stay unknown).
        return ["reply=prose"]
    return [f"key={k}" for k in sorted(keys)]


def structure_tokens(item: ClusterItem) -> list[str]:
    """v1/v2 structure: what the event *did*: tools it called, the shape and keys of what it
    answered (kept so older states featurise as they were trained)."""
    tokens: list[str] = []
    if item.tool_calls and _loads(item.tool_calls) is _UNPARSED:
        tokens.append("tools=unparsed")
    for call in _calls(item):
        fn = call.get("function")
        name = str(call.get("name") or (fn.get("name") if isinstance(fn, dict) else "") or "")
        if name:
            namespace = re.split(r"[./:_]", name, maxsplit=1)[0]
            tokens += [f"toolns={namespace}", f"toolns={namespace}", f"tool={name}"]
        args = _call_args(call)
        if args is not None:
            tokens += [f"arg={k}" for k in args]
    response = item.response or ""
    reply = _reply_object(response)
    if reply is not None:
        tokens += ["resp=json", "resp=json"]
        tokens += [f"key={k}" for k in _keys_of(reply)]
    elif response.strip():
        words = len(response.split())
        tokens += ["resp=prose", "resp=prose", f"resplen={_length_bucket(words)}"]
        tokens.append(f"paras={min(response.count(chr(10) + chr(10)), 6)}")
    if not tokens:
        # No tools and no response: structure says nothing, and an all-equal block would only
        # make every such event look alike. An empty block drops out after normalisation.
        return tokens
    tokens.append(f"promptlen={_length_bucket(len(item.prompt.split()))}")
    return tokens


def hash_into(row: np.ndarray, tokens: Sequence[str], weights: Sequence[float] | None = None) -> None:
    """Signed feature hashing (collisions cancel on average instead of adding up)."""
    dim = row.shape[0]
    for i, token in enumerate(tokens):
        h = stable_hash(token)
        row[h % dim] += (1.0 if (h >> 31) & 1 else -1.0) * (1.0 if weights is None else weights[i])


def _normalise_rows(block: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.maximum(norms, 1e-12)


@dataclass
class Features:
    """A batch of featurised items: the vectors, and per item its skeleton and term set
    (labels and the drift vocabulary signature use them)."""

    vectors: np.ndarray
    skeletons: list[str]
    terms: list[list[str]]


class Featurizer:
    """ClusterItem batch -> Features. Stateless apart from the MiniLM cache."""

    def __init__(self, config: FeaturizerConfig | None = None, encoder: MiniLMEncoder | None = None):
        self.config = config or FeaturizerConfig()
        self._encoder = encoder
        if self.config.text == "minilm" and encoder is None:
            self._encoder = MiniLMEncoder(max_length=self.config.max_length, quantize=self.config.quantize)

    @property
    def encoder(self) -> MiniLMEncoder | None:
        return self._encoder

    def transform(self, items: Sequence[ClusterItem]) -> Features:
        cfg = self.config
        n = len(items)
        skels = [skeleton(it.prompt) for it in items]
        terms = [prompt_terms(s) for s in skels]
        struct = np.zeros((n, cfg.struct_dim), dtype=np.float32)
        bag = np.zeros((n, cfg.terms_dim), dtype=np.float32)
        for r, (item, words) in enumerate(zip(items, terms)):
            hash_into(struct[r], command_tokens(item) if cfg.version >= 3 else structure_tokens(item))
            grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
            counts: dict[str, int] = {}
            for g in grams:
                counts[g] = counts.get(g, 0) + 1
            hash_into(bag[r], list(counts), [1.0 + math.log(c) for c in counts.values()])
        blocks = [cfg.w_struct * _normalise_rows(struct), cfg.w_terms * _normalise_rows(bag)]
        if cfg.text == "minilm":
            assert self._encoder is not None
            blocks.append(cfg.w_text * self._encoder.encode(skels))
        vectors = _normalise_rows(np.concatenate(blocks, axis=1)).astype(np.float32)
        return Features(vectors=vectors, skeletons=skels, terms=terms)
