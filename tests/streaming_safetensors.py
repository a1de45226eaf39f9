"""Write a large random-weight safetensors file one tensor at a time (the test process stays small)."""

import json
import struct

import torch


def write_random_checkpoint(path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> int:
    """float32 tensors with N(0, 0.02) values; returns the file size in bytes."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        nbytes = 4 * int(torch.tensor(shape).prod()) if shape else 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for shape in shapes.values():
            f.write((torch.randn(shape, generator=gen) * 0.02).numpy().tobytes())
    return 8 + len(blob) + offset
