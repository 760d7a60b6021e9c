"""Image folders: every picture Pillow can read under a directory, fitted to one square size.

`folder:PATH` (or a plain directory) is searched recursively in sorted order; hidden files and
folders and files without an image extension are ignored. Any mode is accepted (greyscale,
palette, alpha composited on white, CMYK, 16-bit, bilevel), EXIF orientation is applied, and
each image is either centre-cropped (`fit="crop"`) or padded (`fit="pad"`) to a square. Files
that fail to decode are skipped and listed in one line on stderr. When every image sits in a
first-level subfolder, the subfolder names are the class names.

With 2 or 4 channels (`--channels 2` or `4`) the alpha is kept instead: straight, with a neutral
grey under fully transparent pixels.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import ExifTags, Image

from latentstudio import images as image_files
from latentstudio.data import DataOptions, register_source
from latentstudio.data.base import ImageSet, size_text
from latentstudio.errors import UserError

IMAGE_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga",
})
PROGRESS_MIN_FILES = 200  # below this a progress bar is more noise than help
MAX_LISTED = 5
# Fitting a picture enlarged by more than this counts as enlarging it (a note says so when most
# are): a little upscaling is invisible, twice is soft.
ENLARGED = 1.5
_WORKERS = min(8, os.cpu_count() or 1)
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# A 4096² RGBA picture is 64 MB decoded; above that, at most two full-size decodes at a time
# (a 12000² one is about 0.5 GB), so a folder of huge images packs in bounded memory.
BIG_DECODE_PIXELS = 4096 * 4096
_big_decodes = threading.BoundedSemaphore(2)
_T = Image.Transpose
_EXIF_TURNS = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM, 5: _T.TRANSPOSE,
               6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}  # as ImageOps.exif_transpose


def find_images(root: str | os.PathLike) -> list[Path]:
    """Image files under `root` by extension, as sorted relative paths; hidden entries skipped."""
    root = Path(root)
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        found += [rel / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found, key=lambda p: p.as_posix())


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
TARGET_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
NEUTRAL = 128  # the colour stored under fully transparent pixels (0 in [-1, 1])


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ALPHA_MODES or "transparency" in img.info


def is_transparent(img: Image.Image) -> bool:
    """Whether some pixel of `img` is less than fully opaque."""
    return _has_alpha(img) and img.convert("RGBA").getchannel("A").getextrema()[0] < 255


def neutral_under_clear(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 with alpha last: the colour of fully transparent pixels set to NEUTRAL,
    so what lies under them (often black or leftovers) does not reach the model."""
    if pixels.shape[2] in (2, 4):
        pixels = pixels.copy()
        pixels[pixels[:, :, -1] == 0, :-1] = NEUTRAL
    return pixels


def standard_mode(img: Image.Image, channels: int) -> Image.Image:
    """`img` as 8-bit L (channels=1), LA (2), RGB (3) or RGBA (4): with 1 or 3 channels
    transparency is composited on white, with 2 or 4 it is kept (straight alpha)."""
    if img.mode in _HIGH_BIT_MODES:
        arr = np.asarray(img).astype(np.float32)
        if img.mode == "F":
            scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        elif img.mode.startswith("I;16") or arr.max(initial=0) > 255:
            scale = 255.0 / 65535.0  # 16-bit samples, whatever container mode Pillow chose
        else:
            scale = 1.0
        img = Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
    target = TARGET_MODES[channels]
    if channels in (2, 4):
        if img.mode == target:
            return img
        if not _has_alpha(img) and img.mode not in ("L", "RGB", "1", "P"):
            img = img.convert("RGB")  # CMYK, YCbCr, LAB... reach LA/RGBA through RGB
        rgba = img.convert("RGBA")
        return rgba if channels == 4 else rgba.convert("LA")
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode == target:
        return img
    if target == "L" and img.mode not in ("RGB", "1", "P"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB... reach L through RGB
    return img.convert(target)


def _edge_colour(img: Image.Image) -> int | tuple[int, ...]:
    if img.mode in ("RGBA", "LA"):  # kept transparency: pad with nothing
        return (0,) * len(img.mode)
    arr = np.asarray(img)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    colour = tuple(int(v) for v in np.median(border, axis=0))
    return colour[0] if len(colour) == 1 else colour


def fit_square(img: Image.Image, resolution: int, fit: Literal["crop", "pad"] = "crop",
               height: int | None = None) -> Image.Image:
    """`img` at resolution x resolution (or resolution x `height`, width first): centre crop of
    the scaled picture to that aspect ratio, or scaled to fit and padded.

    Padding uses the median colour of the picture's own border, so white product shots get
    white bars and dark pictures dark ones.
    """
    w, h = img.size
    out_w, out_h = resolution, height or resolution
    lanczos = Image.Resampling.LANCZOS
    if fit == "crop":
        # The largest centred box of the output's aspect ratio.
        cw, ch = (h * out_w / out_h, h) if w * out_h >= h * out_w else (w, w * out_h / out_w)
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        return img.resize((out_w, out_h), lanczos, box=box, reducing_gap=3.0)
    scale = min(out_w / w, out_h / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = img.resize(size, lanczos, reducing_gap=3.0)
    canvas = Image.new(img.mode, (out_w, out_h), _edge_colour(small))
    canvas.paste(small, ((out_w - size[0]) // 2, (out_h - size[1]) // 2))
    return canvas


def fit_scale(size: tuple[int, int], resolution: int, fit: Literal["crop", "pad"] = "crop",
              height: int | None = None) -> float:
    """How much `fit_square` scales a picture of (width, height) `size` (above 1: enlarges it)."""
    scales = (resolution / size[0], (height or resolution) / size[1])
    return max(scales) if fit == "crop" else min(scales)


def reduce_for(img: Image.Image, resolution: int, fit: Literal["crop", "pad"] = "crop",
               height: int | None = None) -> Image.Image:
    """`img` shrunk by a whole factor (a cheap box filter) to no less than twice what `fit`
    needs at `resolution`, so the mode conversions and the Lanczos resize work on a small copy.
    """
    w, h = img.size
    out_w, out_h = resolution, height or resolution
    pick = min if fit == "crop" else max  # the source side that sets the scale
    factor = pick(w // (2 * out_w), h // (2 * out_h))
    if factor < 2:
        return img
    if img.mode in ("1", "P"):  # reduce() works on real pixel values, not palette indices
        has_alpha = img.mode == "P" and "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else ("L" if img.mode == "1" else "RGB"))
    if img.mode.startswith("I;16"):  # no reduce() for it: left as is (rare as big images)
        return img
    return img.reduce(factor)


def decode_image(path: str | os.PathLike, resolution: int, channels: int = 3,
                 fit: Literal["crop", "pad"] = "crop", height: int | None = None,
                 transparent: list[bool] | None = None,
                 enlarged: list[tuple[int, int]] | None = None) -> np.ndarray:
    """One image file as a uint8 (height or resolution, resolution, channels) array; raises if
    unreadable (ImageTooLarge above MAX_PIXELS). True is appended to `transparent` when alpha is
    composited away, and the picture's (width, height) to `enlarged` when fitting it scales it
    up by more than ENLARGED."""
    with image_files.open_image(path) as img:
        # JPEGs decode straight at a reduced scale (DCT scaling): large photos load much faster.
        side = max(resolution, height or resolution)
        img.draft("L" if channels <= 2 else "RGB", (2 * side, 2 * side))
        try:  # read before reducing: the reduced copy has no EXIF block
            turn = _EXIF_TURNS.get(img.getexif().get(ExifTags.Base.Orientation))
        except Exception:  # a damaged EXIF block should not cost the picture
            turn = None
        big = img.width * img.height > BIG_DECODE_PIXELS
        # Other formats decode at full size: let only a few such images be in memory at once.
        with _big_decodes if big else contextlib.nullcontext():
            img.load()
            img = reduce_for(img, resolution, fit, height)
        if turn is not None:
            img = img.transpose(turn)
        if transparent is not None and channels in (1, 3) and is_transparent(img):
            transparent.append(True)
        if enlarged is not None and fit_scale(img.size, resolution, fit, height) > ENLARGED:
            enlarged.append(img.size)
        out = np.asarray(fit_square(standard_mode(img, channels), resolution, fit, height))
    return out[:, :, None] if out.ndim == 2 else neutral_under_clear(out)


def _skipped_line(skipped: list[tuple[str, str]], total: int) -> str:
    names = ", ".join(name for name, _ in skipped[:MAX_LISTED])
    more = ", …" if len(skipped) > MAX_LISTED else ""
    return (f"skipped {len(skipped)} of {total} files (unreadable, damaged or over "
            f"{image_files.MAX_PIXELS / 1e6:.3g} megapixels): {names}{more}")


def _decode_all(root: Path, files: list[Path], decode: Callable[[Path], np.ndarray],
                limit: int | None, progress: bool) -> tuple[list[int], np.ndarray, list[tuple[str, str]]]:
    """Indices of the decoded files, their pixels (N, C, H, W), and the skipped (name, reason)s."""
    from tqdm import tqdm

    def attempt(rel: Path) -> np.ndarray | str:
        try:
            return decode(root / rel)
        except Exception as e:  # Pillow raises many types for damaged files; all mean "skip"
            return f"{type(e).__name__}: {e}"

    want = len(files) if limit is None else min(limit, len(files))
    kept, skipped, start = [], [], 0
    out = None  # filled in place: a list plus np.stack would need twice the memory
    bar = tqdm(total=want, unit="img", desc=f"decoding {root.name or root}", leave=False,
               disable=not progress or len(files) <= PROGRESS_MIN_FILES)
    with ThreadPoolExecutor(_WORKERS) as pool, bar:
        while start < len(files) and len(kept) < want:
            # Decode only as many as still needed (plus slack for skips) when a limit is set.
            stop = min(len(files), start + max(want - len(kept), 4 * _WORKERS))
            results = pool.map(attempt, files[start:stop])
            for i, result in zip(range(start, stop), results, strict=True):
                if isinstance(result, str):
                    skipped.append((files[i].as_posix(), result))
                elif len(kept) < want:
                    if out is None:
                        h, w, c = result.shape
                        out = np.empty((want, c, h, w), np.uint8)  # already (N, C, H, W)
                    out[len(kept)] = result.transpose(2, 0, 1)
                    kept.append(i)
                    bar.update(1)
            start = stop
    if skipped:
        print(_skipped_line(skipped, start), file=sys.stderr)
    return kept, (out[:len(kept)] if out is not None else np.empty((0,), np.uint8)), skipped


GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", *_HIGH_BIT_MODES})


def folder_channels(root: Path, files: list[Path]) -> int:
    """1 when every image is grayscale (by its mode: 1, L, LA, 16-bit...), else 3.

    Reads headers only; stops at the first colour image. Unreadable files are left to the
    decoder, which skips and reports them.
    """
    for rel in files:
        try:
            with Image.open(root / rel) as img:
                if img.mode not in GRAY_MODES:
                    return 3
        except Exception:  # Pillow raises many types for damaged files; the decoder reports them
            continue
    return 1


def load_folder_images(path: str | os.PathLike, resolution: int = 32, channels: int | None = 3,
                       fit: Literal["crop", "pad"] = "crop", limit: int | None = None,
                       progress: bool = True, height: int | None = None) -> ImageSet:
    """All readable images under `path` as an ImageSet, labelled by first-level subfolder;
    `channels=None` takes the folder's own (1 when every image is grayscale, else 3); 2 (LA)
    and 4 (RGBA) keep transparency."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"{root} does not exist: give a folder of images, e.g. folder:~/photos")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder: give the folder that holds the images")
    files = find_images(root)
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"{root} holds no image files ({exts}; hidden files are ignored): "
                        f"put images there or point to the folder that has them")
    auto = channels is None
    if channels is None:
        channels = folder_channels(root, files)
        if channels == 1:
            print(f"note: every image in {root} is grayscale: loading 1 channel "
                  "(--channels 3 for colour)", file=sys.stderr)

    check_fits_in_ram(min(len(files), limit or len(files)), channels, resolution, height)
    # What decoding found out about each file (with a limit, more are decoded than kept).
    found_transparent: set[Path] = set()
    found_enlarged: dict[Path, tuple[int, int]] = {}

    def decode(file: Path) -> np.ndarray:
        transparent: list[bool] | None = [] if auto else None
        enlarged: list[tuple[int, int]] = []
        out = decode_image(file, resolution, channels, fit, height, transparent, enlarged)
        if transparent:
            found_transparent.add(file)
        if enlarged:
            found_enlarged[file] = enlarged[0]
        return out

    kept, pixels, skipped = _decode_all(root, files, decode, limit, progress)
    enlarged = [found_enlarged[root / files[i]] for i in kept if root / files[i] in found_enlarged]
    if len(enlarged) > len(kept) / 2:
        print(_enlarged_line(root, enlarged, len(kept), resolution, height), file=sys.stderr)
    transparent = [i for i in kept if root / files[i] in found_transparent]
    if transparent and len(transparent) >= len(kept) / 2:  # not for a stray cut-out among photos
        print(f"note: {len(transparent)} images in {root} are transparent: composited on white "
              f"(--channels {channels + 1} keeps the transparency)", file=sys.stderr)
    if channels in (2, 4) and kept and bool((pixels[:, -1] == 255).all()):
        print(f"note: no image in {root} has transparency: the alpha channel will be opaque "
              f"everywhere (--channels {channels - 1} is enough)", file=sys.stderr)
    if not kept:
        raise UserError(f"none of the {len(skipped)} image files in {root} could be read "
                        f"(e.g. {skipped[0][0]}: {skipped[0][1]}): check that they are not damaged")
    images = torch.from_numpy(pixels)
    labels, names = _labels([files[i] for i in kept], root)
    return ImageSet(images, labels, names, f"folder:{root}")


def check_fits_in_ram(count: int, channels: int, resolution: int, height: int | None = None,
                      available: int | None = None) -> None:
    """Refuse, before decoding, a dataset whose pixels would not fit in the free RAM (the process
    would be killed midway), naming the image count that fits."""
    from latentstudio.devices import available_ram, format_bytes

    available = available_ram() if available is None else available
    per_image = channels * resolution * (height or resolution)
    if not available or count * per_image <= 0.8 * available:  # room left for the training
        return
    fits = int(0.8 * available // per_image)
    size = size_text(resolution, height or resolution)
    raise UserError(f"{count:,} images at {size} px need {format_bytes(count * per_image)} of "
                    f"memory, more than the {format_bytes(available)} free: use at most {fits:,} "
                    f"images (train --data-limit, pack --limit) or a lower --resolution")


def _enlarged_line(root: Path, enlarged: list[tuple[int, int]], total: int, resolution: int,
                   height: int | None) -> str:
    """The note that most pictures are smaller than the training size (so samples are blurred)."""
    sides = sorted(min(w, h) for w, h in enlarged)
    size = size_text(resolution, height or resolution)
    return (f"note: {len(enlarged)} of {total} images in {root} are smaller than {size} px and "
            f"are enlarged (median shorter side {sides[len(sides) // 2]} px): samples will be "
            f"no sharper than them; a --resolution near their size trains faster")


def _labels(files: list[Path], root: Path) -> tuple[torch.Tensor | None, list[str]]:
    classes = [f.parts[0] if len(f.parts) > 1 else None for f in files]
    if all(c is None for c in classes):
        return None, []
    if any(c is None for c in classes):
        print(f"note: {root} has images both at its top level and in subfolders; loading them "
              "without class labels (move the top-level images into a subfolder to get labels)",
              file=sys.stderr)
        return None, []
    names = sorted(set(classes))
    index = {n: i for i, n in enumerate(names)}
    return torch.tensor([index[c] for c in classes], dtype=torch.int64), names


@register_source("folder")
def load_folder(arg: str, opts: DataOptions) -> ImageSet:
    """`folder:PATH` or a plain directory path."""
    if not arg:
        raise UserError("folder: needs a path, e.g. folder:~/photos")
    return load_folder_images(arg, opts.resolution, opts.channels, opts.fit, opts.limit,
                              opts.progress, opts.height)
