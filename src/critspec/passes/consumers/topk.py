"""Consumer: streaming top-K of v per (spike definition, layer), for exact rate matching
(spec/02_RATE_MATCHING.md; the scan is critspec.events.scan.feed).

Output arrays per spike definition sd (L layers): `<sd>.values` float32 and
`<sd>.positions` int64 (every layer's top K concatenated, each in ascending position
order), `<sd>.offsets` int64 [L + 1] (layer l is offsets[l]:offsets[l+1]) and `<sd>.n`
int64 [L] (values seen per layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from canon import CANON
from critspec.events.scan import ZBuffers, feed
from critspec.events.tail_quantile import StreamingTopK, TopK
from critspec.passes.consumers.base import NoLogits, PassShape

VALUES, POSITIONS, OFFSETS, N_SEEN = "values", "positions", "offsets", "n"


def array_name(spike_def_id: str, what: str) -> str:
    return f"{spike_def_id}.{what}"


@dataclass(frozen=True, eq=False)
class TopKConsumer:
    """mu, sigma float32 [L, d_ff] (Phase 1), eps, K[sd] = buffer size per layer."""

    kind: ClassVar[str] = CANON.ENUM.CONSUMER.TOPK
    needs_u: ClassVar[bool] = True
    needs_logits: ClassVar[bool] = False

    mu: np.ndarray
    sigma: np.ndarray
    eps: float
    K: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def start(self, shape: PassShape, device: torch.device) -> _TopKAccumulator:
        return _TopKAccumulator(self, shape, device)


class _TopKAccumulator(NoLogits):
    def __init__(self, spec: TopKConsumer, shape: PassShape, device: torch.device) -> None:
        self.mu = torch.as_tensor(spec.mu, dtype=torch.float32, device=device)
        self.sigma = torch.as_tensor(spec.sigma, dtype=torch.float32, device=device)
        self.eps = spec.eps
        row = shape.seq_len * shape.d_ff
        self.tops = {sd: StreamingTopK(shape.n_layers, list(ks), row) for sd, ks in spec.K.items()}
        self.buffers = ZBuffers()

    def on_u(self, layer: int, u: torch.Tensor, row_start: int) -> None:
        feed(
            self.tops,
            layer,
            u,
            self.mu[layer],
            self.sigma[layer],
            self.eps,
            row_start,
            self.buffers,
        )

    def finish(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for sd, top in self.tops.items():
            layers = top.finalize()
            sizes = [len(t.values) for t in layers]
            out[array_name(sd, VALUES)] = np.concatenate([t.values for t in layers]).astype(
                np.float32, copy=False
            )
            out[array_name(sd, POSITIONS)] = np.concatenate([t.positions for t in layers]).astype(
                np.int64, copy=False
            )
            out[array_name(sd, OFFSETS)] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            out[array_name(sd, N_SEEN)] = np.array([t.n for t in layers], dtype=np.int64)
        return out


def top_k_layers(arrays: Mapping[str, np.ndarray], spike_def_id: str) -> list[TopK]:
    """The per-layer TopK buffers of one spike definition from a TopKConsumer's arrays."""
    values = arrays[array_name(spike_def_id, VALUES)]
    positions = arrays[array_name(spike_def_id, POSITIONS)]
    offsets = arrays[array_name(spike_def_id, OFFSETS)]
    n = arrays[array_name(spike_def_id, N_SEEN)]
    return [
        TopK(values=values[a:b], positions=positions[a:b], n=int(n_l))
        for a, b, n_l in zip(offsets[:-1], offsets[1:], n, strict=True)
    ]
