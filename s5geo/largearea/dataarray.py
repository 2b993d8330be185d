"""Land cover of a dask-backed xarray DataArray as a lazy DataArray of classes (the ``xarray``
extra: ``pip install '.[xarray]'`` from a clone).

The classes are computed in blocks of rows of the window plan that :func:`s5geo.infer.predict_scene`
makes of a raster of the same size, grid and data (:func:`s5geo.infer.tiling.row_blocks`): each
block is one dask task that takes the input rows its windows read, puts them in a sparse
in-memory GeoTIFF of the whole array's size and grid (only those rows are stored), and predicts
its rows there with :func:`s5geo.infer.predict_block`. So the classes equal those of
``predict_scene`` on a file holding the same pixels, pixel for pixel, and a block's memory is
its input rows and its output rows. Each worker process loads the model once, cached by model
path. xarray and rioxarray are imported only when the function runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.errors import UserError
from s5geo.infer.tiling import RowBlock
from s5geo.largearea.worker import worker_model
from s5geo.modelfile import NODATA
from s5geo.options import PredictOptions

# Blocks of about this many pixels: 16 MP of a 4-band uint8 input is 64 MB a task.
BLOCK_MEGAPIXELS = 16.0


def predict_dataarray(
    data: Any,
    model: str | Path | None = None,
    options: PredictOptions | None = None,
    *,
    block_megapixels: float = BLOCK_MEGAPIXELS,
) -> Any:
    """The land-cover classes of ``data`` as a lazy DataArray.

    :param data: A DataArray with dims ``("band", "y", "x")``, dask-backed or in memory, whose
        CRS, transform and nodata rioxarray knows (``rioxarray.open_rasterio(path,
        chunks=...)``, odc-stac's ``load`` after ``to_array("band")``). Pixels equal to its
        nodata (or NaN) are nodata.
    :param model: An ONNX model file; None takes the bundled model.
    :param options: How the scene is tiled and run (its polygon settings are not used).
    :param block_megapixels: About how many pixels each dask task predicts.
    :returns: A DataArray of uint8 classes with dims ``("y", "x")``, the input's coordinates and
        CRS, nodata 255 (``rio.nodata``), chunked by blocks of rows; its ``attrs`` name the
        classes (``class_names``). Nothing runs until it is computed.
    :raises s5geo.errors.UserError: For a DataArray without those dims or with fewer bands
        than the model reads, or ``block_megapixels`` not above 0.
    """
    import dask
    import dask.array as dsa
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr

    from s5geo.infer import default_model_path, plan_blocks

    if tuple(data.dims) != ("band", "y", "x"):
        raise UserError(f"data must have dims ('band', 'y', 'x'), not {tuple(data.dims)}")
    if not block_megapixels > 0:
        raise UserError(f"block_megapixels must be more than 0, not {block_megapixels}")
    opts = options or PredictOptions()
    model_path = str(Path(model).resolve() if model else default_model_path())
    m = worker_model(model_path, opts.providers, 0)
    grid = _Grid.of(data)
    with _sparse_tiff(grid) as name:
        blocks = plan_blocks(name, round(block_megapixels * 1e6), model=m, options=opts)
    source = data.data if isinstance(data.data, dsa.Array) else dsa.from_array(data.data)
    parts = []
    for block in blocks:
        strip = source[:, block.read0 : block.read1, :]
        task = dask.delayed(_predict_rows, pure=True)(
            strip, asdict(block), grid, model_path, opts,
            dask_key_name=f"s5geo-classes-{dask.base.tokenize(strip, block, model_path, opts)}",
        )  # fmt: skip
        shape = (block.row1 - block.row0, grid.width)
        parts.append(dsa.from_delayed(task, shape=shape, dtype=np.uint8))
    classes = xr.DataArray(
        dsa.concatenate(parts, axis=0),
        dims=("y", "x"),
        coords={k: v for k, v in data.coords.items() if "band" not in v.dims},
        attrs={"class_names": dict(m.info.class_names)},
        name="land_cover",
    )
    classes = classes.rio.write_crs(grid.crs) if grid.crs is not None else classes
    return classes.rio.write_transform(grid.transform).rio.write_nodata(NODATA, encoded=False)


@dataclass(frozen=True)
class _Grid:
    """Size, grid, data type and nodata of the DataArray: what a GeoTIFF of it needs."""

    bands: int
    height: int
    width: int
    dtype: str
    crs: Any
    transform: Any
    nodata: float | None

    @classmethod
    def of(cls, data: Any) -> _Grid:
        bands, height, width = (int(n) for n in data.shape)
        rio = data.rio
        return cls(bands, height, width, np.dtype(data.dtype).name, rio.crs, rio.transform(),
                   rio.nodata)  # fmt: skip


@contextmanager
def _sparse_tiff(grid: _Grid, rows: np.ndarray | None = None, row0: int = 0) -> Iterator[str]:
    """The name of a sparse in-memory GeoTIFF of ``grid`` that stores only ``rows`` (bands x
    rows x width) from row ``row0``, or no pixels at all: the other blocks are never written."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": grid.bands,
        "dtype": grid.dtype, "crs": grid.crs, "transform": grid.transform,
        "nodata": grid.nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "sparse_ok": True,
    }  # fmt: skip
    with MemoryFile(ext=".tif") as memory:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with memory.open(**profile) as dst:
                if rows is not None:
                    dst.write(rows, window=Window(0, row0, grid.width, rows.shape[1]))
        yield str(memory.name)


def _predict_rows(
    strip: np.ndarray, block: dict[str, int], grid: _Grid, model: str, options: PredictOptions
) -> np.ndarray:
    """The class rows of ``block`` from ``strip``, the input rows its windows read."""
    from s5geo.infer import predict_block

    b = RowBlock(**block)
    out = np.empty((b.row1 - b.row0, grid.width), np.uint8)

    def emit(row: int, cls: np.ndarray, conf: np.ndarray) -> None:
        out[row - b.row0 : row - b.row0 + len(cls)] = cls

    with _sparse_tiff(grid, np.asarray(strip), b.read0) as name:
        predict_block(
            name, b, emit, model=worker_model(model, options.providers, 0), options=options
        )
    return out
