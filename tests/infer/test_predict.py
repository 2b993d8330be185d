"""Scene prediction on synthetic georeferenced rasters with exact answers (per-pixel models)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import build_perpixel_model, perpixel_reference, write_scene
from rio_cogeo.cogeo import cog_validate

from s5geo.errors import Cancelled, UserError
from s5geo.infer import ParameterError, PredictOptions, load_model, predict_scene
from s5geo.infer.batches import Batch, mark_last
from s5geo.io.overviews import mode_2x2


def assert_matches_reference(classes: np.ndarray, raw: np.ndarray, scale: float = 255.0) -> None:
    """Classes equal the float64 reference except at float32 near-ties of the top two scores."""
    expected = perpixel_reference(raw, scale)
    differ = classes != expected
    assert differ.mean() < 1e-4, f"{differ.sum()} pixels differ"


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_tiled_prediction_equals_untiled(make_scene, perpixel_model: Path, tmp_path: Path) -> None:
    scene = make_scene(300, 257)
    tiled, whole = tmp_path / "tiled.tif", tmp_path / "whole.tif"
    result = predict_scene(scene, tiled, model=perpixel_model,
                           options=PredictOptions(overlap=16, batch_size=3))  # fmt: skip
    assert result.windows_run > 20  # really tiled: 64-px tiles over 300x257
    dynamic = build_perpixel_model(tmp_path / "dyn.onnx", dynamic=True)
    single = predict_scene(scene, whole, model=dynamic, options=PredictOptions(tile_size=320))
    assert single.windows_run == 1
    np.testing.assert_array_equal(_read(tiled), _read(whole))
    with rasterio.open(scene) as ds:
        assert_matches_reference(_read(tiled), ds.read())


def test_output_is_a_valid_cog_on_the_scene_grid(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(700, 600, crs="EPSG:32618", res=0.5)
    out = tmp_path / "lc.tif"
    predict_scene(scene, out, model=perpixel_model, confidence=tmp_path / "conf.tif")
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    assert cog_validate(str(tmp_path / "conf.tif"))[0]
    with rasterio.open(scene) as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs and ds.transform == src.transform
        assert (ds.width, ds.height, ds.dtypes[0], ds.nodata) == (600, 700, "uint8", 255)
        assert ds.block_shapes[0] == (512, 512)
        assert ds.overviews(1)
        assert ds.colormap(1)[2][:3] == (255, 0, 0)  # urban, from the model's colours
        assert ds.tags()["S5GEO_CLASS_NAMES"] == '{"0": "water", "1": "forest", "2": "urban"}'
    assert "urban" in (tmp_path / "lc.tif.aux.xml").read_text()
    assert "paletted" in (tmp_path / "lc.qml").read_text()
    conf = _read(tmp_path / "conf.tif")
    assert conf.min() >= 33 and conf.max() <= 100  # 3 classes: the top one has at least 1/3
    # The overviews are the ones built while predicting (2 x 2 mode), and nothing else is left.
    with rasterio.open(out, overview_level=0) as level:
        np.testing.assert_array_equal(level.read(1), mode_2x2(_read(out)))
    assert {p.suffix for p in tmp_path.iterdir()} == {".onnx", ".tif", ".xml", ".qml"}


@pytest.mark.parametrize(
    ("dtype", "scale"), [("uint8", 255.0), ("uint16", 65535.0), ("float32", 1.0)]
)
def test_dtypes_are_normalised_by_the_model_scale(make_scene, tmp_path, dtype, scale) -> None:
    model = build_perpixel_model(tmp_path / "m.onnx", input_scale=scale)
    scene = make_scene(130, 90, dtype=dtype)
    out = tmp_path / "out.tif"
    predict_scene(scene, out, model=model)
    with rasterio.open(scene) as ds:
        assert_matches_reference(_read(out), ds.read(), scale)


def test_geographic_crs_and_scene_smaller_than_a_tile(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(40, 23, crs="EPSG:4326", res=0.0001, origin=(10.0, 47.0))
    out = tmp_path / "small.tif"
    result = predict_scene(scene, out, model=perpixel_model)
    assert result.windows_run == 1
    with rasterio.open(scene) as ds, rasterio.open(out) as o:
        assert (o.width, o.height) == (23, 40) and o.crs == ds.crs
        assert_matches_reference(o.read(1), ds.read())


def test_models_with_dynamic_height_and_width(make_scene, tmp_path) -> None:
    model = build_perpixel_model(tmp_path / "dyn.onnx", dynamic=True, tile=96)
    scene = make_scene(200, 150)
    out = tmp_path / "o.tif"
    predict_scene(scene, out, model=model, options=PredictOptions(tile_size=80))
    with rasterio.open(scene) as ds:
        assert_matches_reference(_read(out), ds.read())


def test_nodata_collar_is_skipped_and_written_as_nodata(tmp_path, rng, perpixel_model) -> None:
    data = rng.integers(1, 255, size=(3, 320, 330), dtype=np.uint8)
    data[:, :70, :] = 0  # a collar wider than a tile: whole windows are nodata
    data[:, :, 300:] = 0
    data[:, 150:160, 40:50] = 0  # a hole inside
    scene = write_scene(tmp_path / "collar.tif", data, nodata=0)
    out = tmp_path / "o.tif"
    result = predict_scene(scene, out, model=perpixel_model, options=PredictOptions(overlap=16))
    assert result.windows_skipped > 0
    classes = _read(out)
    invalid = (data == 0).all(axis=0)
    assert (classes[invalid] == 255).all()
    assert (classes[~invalid] != 255).all()  # the blend covers every valid pixel
    assert_matches_reference(np.where(invalid, perpixel_reference(data), classes), data)


def test_alpha_band_marks_nodata(tmp_path, rng, perpixel_model) -> None:
    data = rng.integers(1, 255, size=(4, 100, 120), dtype=np.uint8)
    data[3] = 255
    data[3, :, :30] = 0
    path = tmp_path / "alpha.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=120, height=100, count=4, dtype="uint8",
        crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 100, 1, 1), photometric="RGB",
        alpha="YES",
    ) as ds:  # fmt: skip
        ds.write(data)
    out = tmp_path / "o.tif"
    predict_scene(path, out, model=perpixel_model)
    classes = _read(out)
    assert (classes[:, :30] == 255).all() and (classes[:, 30:] != 255).all()


def test_processing_extent_writes_only_that_part(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(200, 200, res=2.0, origin=(1000.0, 2000.0))
    out = tmp_path / "part.tif"
    predict_scene(scene, out, model=perpixel_model, bounds=(1100.0, 1700.0, 1200.0, 1900.0))
    with rasterio.open(scene) as ds, rasterio.open(out) as o:
        assert (o.width, o.height) == (50, 100)
        assert tuple(o.bounds) == (1100.0, 1700.0, 1200.0, 1900.0)
        np.testing.assert_array_equal(o.read(1), perpixel_reference(ds.read())[50:150, 50:100])
    with pytest.raises(UserError, match="does not overlap"):
        predict_scene(scene, tmp_path / "x.tif", model=perpixel_model, bounds=(0, 0, 10, 10))


def test_scene_at_another_resolution_is_resampled_and_written_on_its_grid(
    make_scene, tmp_path
) -> None:
    model = build_perpixel_model(tmp_path / "m.onnx", resolution_cm=100.0)  # a 1 m model
    scene = make_scene(300, 260, res=0.5)
    out = tmp_path / "o.tif"
    result = predict_scene(scene, out, model=model)
    assert result.scale == pytest.approx(2.0)
    with rasterio.open(scene) as ds, rasterio.open(out) as o:
        assert o.transform == ds.transform and (o.width, o.height) == (260, 300)
        agree = (o.read(1) == perpixel_reference(ds.read())).mean()
    assert agree > 0.4  # random noise: only per-pixel agreement after 2x down/up-sampling


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_bad_inputs_are_user_errors_and_write_nothing(tmp_path, make_scene, rng) -> None:
    model = build_perpixel_model(tmp_path / "m.onnx")
    outdir = tmp_path / "out"
    outdir.mkdir()
    two_bands = make_scene(50, 50, bands=2, name="two.tif")
    not_raster = tmp_path / "notes.txt"
    not_raster.write_text("hello")
    empty = write_scene(tmp_path / "empty.tif", np.zeros((3, 80, 80), np.uint8), nodata=0)
    cases = {
        tmp_path / "missing.tif": "no such file",
        not_raster: "not a raster",
        two_bands: "has 2 band",
        empty: "no valid pixels",
    }
    for scene, message in cases.items():
        with pytest.raises(UserError, match=message):
            predict_scene(scene, outdir / "o.tif", model=model, confidence=outdir / "c.tif")
        assert _files(outdir) == set(), scene
    no_key = build_perpixel_model(tmp_path / "nokey.onnx", drop_key="s5geo.bands")
    with pytest.raises(UserError, match="s5geo.bands"):
        load_model(no_key)
    good = make_scene(50, 50, name="good.tif")
    with pytest.raises(UserError, match="folder"):
        predict_scene(good, tmp_path / "nowhere" / "o.tif", model=model)


def test_existing_output_needs_overwrite(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(64, 64)
    out = tmp_path / "o.tif"
    out.write_bytes(b"precious")
    with pytest.raises(UserError, match="--overwrite"):
        predict_scene(scene, out, model=perpixel_model)
    assert out.read_bytes() == b"precious"
    predict_scene(scene, out, model=perpixel_model, overwrite=True)
    assert out.read_bytes() != b"precious"


def test_cancel_from_progress_callback_leaves_nothing(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(400, 1100)  # wider than a tile: overview levels are being built too
    outdir = tmp_path / "out"
    outdir.mkdir()
    seen = []

    def cancel_midway(report) -> bool:
        seen.append(report.fraction)
        return report.done < 10

    with pytest.raises(Cancelled):
        predict_scene(scene, outdir / "o.tif", model=perpixel_model, progress=cancel_midway,
                      options=PredictOptions(batch_size=2))  # fmt: skip
    assert _files(outdir) == set()
    assert 0 < seen[-1] < 1 and seen == sorted(seen)


def test_a_failing_inference_midway_stops_every_thread_and_leaves_nothing(
    make_scene, perpixel_model, tmp_path
) -> None:
    """Inference runs in its own thread: an error there reaches the caller, nothing is written,
    and neither the inference nor the reader thread outlives the call."""
    scene = make_scene(400, 400)
    outdir = tmp_path / "out"
    outdir.mkdir()
    model = load_model(perpixel_model)
    calls = []

    def fail_on_third(batch: np.ndarray, release_memory: bool = False) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 3:
            raise UserError("the model failed on this batch")
        return type(model).run(model, batch, release_memory)

    model.run = fail_on_third  # type: ignore[method-assign]
    with pytest.raises(UserError, match="failed on this batch"):
        predict_scene(scene, outdir / "o.tif", model=model, options=PredictOptions(batch_size=2))
    assert len(calls) in (3, 4)  # the batch after the failing one may already have started
    assert _files(outdir) == set()
    alive = {t.name for t in threading.enumerate()}
    assert not any(n.startswith(("s5geo-infer", "s5geo-reader")) for n in alive), alive


def _batch(run: int, skipped: int = 0) -> Batch:
    keys = [(0, i) for i in range(run)]
    skips = [(1, i) for i in range(skipped)]
    return Batch(keys, [], [], np.zeros((run, 1, 1, 1), np.float32), skips)


@pytest.mark.parametrize(
    ("batches", "only_batch", "flags"),
    [
        ([2, 2, 1], False, [False, False, True]),  # the last batch releases the arena
        ([0, 2, 2, 0, 0], False, [False, False, True, False, False]),  # nodata collars around
        ([1], True, [True]),  # a scene of one batch
        ([0, 1, 0], True, [False, True, False]),
        ([2, 0], False, [False, False]),  # every later window nodata: the release is missed
    ],
)
def test_the_last_batch_with_windows_is_marked(batches, only_batch, flags) -> None:
    got = list(mark_last(iter([_batch(n, 1 - min(n, 1)) for n in batches]), only_batch))
    assert [len(b.keys) for b, _ in got] == batches  # every batch, in order
    assert [last for _, last in got] == flags


def test_nan_pixels_are_nodata_even_when_undeclared(tmp_path, rng, perpixel_model) -> None:
    raw = rng.uniform(0.0, 255.0, size=(3, 90, 90)).astype("float32")
    raw[:, 20:40, 10:70] = np.nan
    raw[1, 60, 60] = np.nan  # one band is enough
    scene = write_scene(tmp_path / "nan.tif", raw)  # no nodata value declared
    out = tmp_path / "o.tif"
    predict_scene(scene, out, model=perpixel_model)
    classes = _read(out)
    nan = np.isnan(raw).any(axis=0)
    assert (classes[nan] == 255).all()
    expected = perpixel_reference(np.nan_to_num(raw))
    assert (classes[~nan] == expected[~nan]).mean() > 0.9999


def test_values_beyond_the_model_scale_are_warned(make_scene, perpixel_model, tmp_path) -> None:
    wide = make_scene(80, 80, dtype="uint16")
    warned = predict_scene(wide, tmp_path / "a.tif", model=perpixel_model)
    assert any("expects 0..255" in w for w in warned.warnings)
    fits = make_scene(80, 80, name="b.tif")
    fits = predict_scene(fits, tmp_path / "o.tif", model=perpixel_model)
    assert fits.warnings == []


def test_extent_is_rounded_outwards_to_whole_pixels(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(100, 100, res=2.0, origin=(1000.0, 2000.0))
    inside_one_pixel = (1010.5, 1989.5, 1011.0, 1990.0)
    predict_scene(scene, tmp_path / "one.tif", model=perpixel_model, bounds=inside_one_pixel)
    with rasterio.open(tmp_path / "one.tif") as o:
        assert (o.width, o.height) == (1, 1)
        assert tuple(o.bounds) == (1010.0, 1988.0, 1012.0, 1990.0)
    predict_scene(scene, tmp_path / "f.tif", model=perpixel_model, bounds=(1001, 1901, 1011, 1999))
    with rasterio.open(tmp_path / "f.tif") as o:
        assert tuple(o.bounds) == (1000.0, 1900.0, 1012.0, 2000.0)  # covers the whole box


def test_the_input_scene_and_model_are_never_overwritten(make_scene, perpixel_model, tmp_path):
    scene = make_scene(64, 64)
    model = tmp_path / "model.tif"  # ONNX Runtime goes by content, not by name
    model.write_bytes(perpixel_model.read_bytes())
    before = scene.read_bytes(), model.read_bytes()
    for target, role in ((scene, "scene"), (model, "model")):
        with pytest.raises(UserError, match=f"is the input {role}"):
            predict_scene(scene, target, model=model, overwrite=True)
    assert (scene.read_bytes(), model.read_bytes()) == before


def test_unreadable_pixels_are_a_user_error(make_scene, perpixel_model, tmp_path) -> None:
    scene = make_scene(300, 300)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(scene.read_bytes()[:60_000])
    with pytest.raises(UserError, match="truncated or corrupt"):
        predict_scene(truncated, tmp_path / "o.tif", model=perpixel_model)
    assert not (tmp_path / "o.tif").exists()


def test_a_caller_can_cancel_before_the_first_inference(make_scene, perpixel_model, tmp_path):
    reports = []

    def cancel(report) -> bool:
        reports.append(report)
        return False

    with pytest.raises(Cancelled):
        predict_scene(make_scene(64, 64), tmp_path / "o.tif", model=perpixel_model, progress=cancel)
    assert [(r.done, r.fraction) for r in reports] == [(0, 0.0)]
    assert _files(tmp_path) == {"scene.tif", "perpixel.onnx"}


def test_outputs_must_carry_the_extension_of_their_format(make_scene, perpixel_model, tmp_path):
    scene = make_scene(64, 64)
    for options, what in (
        ({}, "out_raster .*o.png is written as TIF"),
        ({"confidence": tmp_path / "c.gpkg"}, "confidence .*c.gpkg is written as TIF"),
        ({"quicklook": tmp_path / "q.tif"}, "quicklook .*q.tif is written as PNG"),
    ):
        out = tmp_path / ("o.png" if not options else "o.tif")
        with pytest.raises(ParameterError, match=f"^{what}") as caught:
            predict_scene(scene, out, model=perpixel_model, **options)
        assert caught.value.parameters == (what.split()[0],)
    assert _files(tmp_path) == {"scene.tif", "perpixel.onnx"}


def test_nan_pixels_are_nodata_when_the_scene_is_resampled(tmp_path, rng) -> None:
    model = build_perpixel_model(tmp_path / "m.onnx", resolution_cm=100.0)  # a 1 m model
    raw = rng.uniform(0.0, 255.0, size=(3, 120, 120)).astype("float32")
    raw[:, 30:60, 20:90] = np.nan
    scene = write_scene(tmp_path / "nan.tif", raw, res=0.5)
    result = predict_scene(scene, tmp_path / "o.tif", model=model)
    assert result.scale == pytest.approx(2.0)
    classes = _read(tmp_path / "o.tif")
    nan = np.isnan(raw).any(axis=0)
    assert (classes[nan] == 255).all() and (classes[~nan] != 255).all()
