"""Reading published network weights safely: tensors only (weights_only=True), one-line errors."""

from __future__ import annotations

import os
import pickle
import warnings

import torch

from latentstudio.errors import UserError


def read_weights(path: str | os.PathLike, what: str) -> object:
    """The tensors in a weights file, loaded with weights_only=True; UserError in one line when
    the file is missing, damaged, or a pickle that would run code (never loaded another way)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UserError(f"{what} weights not found at {path}") from None
        except pickle.UnpicklingError:
            raise UserError(f"refused {path}: not {what} weights holding only tensors (a damaged "
                            f"file, another format, or Python code that loading would run); use "
                            f"the published weights file") from None
        except Exception as e:  # a truncated download, not a torch file at all
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot read {what} weights {path}: {reason}") from None
