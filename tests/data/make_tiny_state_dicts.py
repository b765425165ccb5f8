"""Write two tiny PyTorch state dicts, one per serialisation, for the reader tests.

Run once in the scratch environment of make_lite_golden.py:
    /tmp/torchref/bin/python tests/data/make_tiny_state_dicts.py
The expected values are rebuilt in tests/test_torch_weights.py by ``expected_tensors``.
"""

from pathlib import Path

import torch


def tensors() -> dict:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "weight": base,
        "transposed": base.t(),  # non-contiguous: strides matter
        "slice": base[1:, 1:3],  # storage offset
        "half": torch.tensor([0.5, -2.0], dtype=torch.float16),
        "steps": torch.tensor(7, dtype=torch.int64),  # 0-d, like num_batches_tracked
        "param": torch.nn.Parameter(torch.ones(2, 2)),
    }


if __name__ == "__main__":
    here = Path(__file__).parent
    torch.save(tensors(), here / "tiny_zip.pth")
    torch.save(tensors(), here / "tiny_legacy.pth", _use_new_zipfile_serialization=False)
    for name in ("tiny_zip.pth", "tiny_legacy.pth"):
        print(name, (here / name).stat().st_size)
