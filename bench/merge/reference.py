#!/usr/bin/python3
"""PyTorch reference for the merge benchmark: the same methods with mergekit's
semantics, one tensor at a time, computing in float32 and writing F16 safetensors.

usage: reference.py METHOD OUT INPUT_DIR... (for ties/dare_ties the first input is the base)

Prints the seconds spent after imports (reading, merging, writing) on stdout, so the
comparison does not charge torch its import time. No pip: safetensors is read and
written by hand (8-byte little-endian header length, JSON header, raw bytes).
"""
import json
import os
import struct
import sys
import time

import torch

DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}
NAMES = {v: k for k, v in DTYPES.items()}


class Reader:
    def __init__(self, folder):
        path = os.path.join(folder, "model.safetensors") if os.path.isdir(folder) else folder
        self.f = open(path, "rb")
        n = struct.unpack("<Q", self.f.read(8))[0]
        if n > 100 << 20:
            raise ValueError(f"{path}: header too large")
        hdr = json.loads(self.f.read(n))
        hdr.pop("__metadata__", None)
        self.base = 8 + n
        self.items = sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0])
        self.info = dict(self.items)

    def tensor(self, name):
        info = self.info[name]
        b, e = info["data_offsets"]
        self.f.seek(self.base + b)
        buf = bytearray(e - b)
        self.f.readinto(buf)
        return torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).float()


def write_header(f, items, dtype):
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    size = torch.tensor([], dtype=dtype).element_size()
    for name, info in items:
        n = 1
        for d in info["shape"]:
            n *= d
        hdr[name] = {"dtype": NAMES[dtype], "shape": info["shape"], "data_offsets": [off, off + n * size]}
        off += n * size
    raw = json.dumps(hdr, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)


def linear(ts, weights=(0.5, 0.5)):
    w = torch.tensor(weights).view(-1, *([1] * ts[0].dim()))
    return (torch.stack(ts) * w).sum(0) / w.sum()


def slerp(t, v0, v1, dot_threshold=0.9995, eps=1e-8):
    a, b = v0.flatten().double(), v1.flatten().double()
    na, nb = a.norm(), b.norm()
    na = na if na > eps else torch.tensor(1.0, dtype=torch.float64)
    nb = nb if nb > eps else torch.tensor(1.0, dtype=torch.float64)
    dot = float((a @ b) / (na * nb))
    if abs(dot) > dot_threshold:
        return (1 - t) * v0 + t * v1
    theta0 = torch.tensor(dot).acos().item()
    sin0 = torch.tensor(theta0).sin().item()
    s0 = torch.tensor(theta0 - theta0 * t).sin().item() / sin0
    s1 = torch.tensor(theta0 * t).sin().item() / sin0
    return s0 * v0 + s1 * v1


def magnitude_mask(delta, density):
    n = delta.numel()
    k = int(density * n)
    if density >= 1:
        return torch.ones_like(delta)
    if k == 0:
        return torch.zeros_like(delta)
    mag = delta.abs().flatten()
    thr = torch.kthvalue(mag, n - k + 1).values
    return (delta.abs() >= thr).to(delta.dtype)


def ties_like(base, others, weights, density, sparsify, gen):
    deltas = []
    for x in others:
        d = x - base
        if sparsify == "magnitude":
            d = d * magnitude_mask(d, density)
        else:  # DARE: drop with p = 1 - density, rescale the survivors
            keep = torch.bernoulli(torch.full_like(d, density), generator=gen)
            d = d * keep / density
        deltas.append(d)
    deltas = torch.stack(deltas)
    w = torch.tensor(weights, dtype=deltas.dtype).view(-1, *([1] * base.dim()))
    weighted = deltas * w
    sign = torch.where(weighted.sum(0) >= 0, 1.0, -1.0)
    mask = (weighted.sign() == sign).to(weighted.dtype)
    mixed = (weighted * mask).sum(0)
    div = (w * mask).sum(0)
    div[div == 0] = 1
    return base + mixed / div


def main():
    method, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.set_num_threads(os.cpu_count())
    start = time.perf_counter()
    readers = [Reader(p) for p in inputs]
    items = readers[0].items
    gen = torch.Generator().manual_seed(1)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        write_header(f, items, torch.float16)
        for name, _ in items:
            ts = [r.tensor(name) for r in readers]
            if method == "linear":
                y = linear(ts)
            elif method == "slerp":
                y = slerp(0.5, ts[0], ts[1])
            elif method == "ties":
                y = ties_like(ts[0], ts[1:], [0.5, 0.5], 0.5, "magnitude", gen)
            elif method == "dare_ties":
                y = ties_like(ts[0], ts[1:], [0.5, 0.5], 0.5, "random", gen)
            else:
                raise SystemExit(f"unknown method {method}")
            f.write(y.half().contiguous().numpy().tobytes())
    os.rename(tmp, out)
    print(f"{time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
