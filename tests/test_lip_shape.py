"""training/lip_shape.py: the lip-shape teacher's measures from Face Mesh landmarks, and its readers."""
import numpy as np
import pytest

from training import lip_shape as L


def face_points(open_by=0.0, pout=0.0, width=40.0):
    """Face Mesh-like landmarks (478, 3) in pixels: eyes 100 px apart, a mouth below them whose
    inner gap is `open_by` px, its middles `pout` px nearer the camera than its corners."""
    p = np.zeros((478, 3))
    p[L.EYE_RIGHT] = (50, 50, 0)
    p[L.EYE_LEFT] = (150, 50, 0)
    centre = np.array([100.0, 150.0])
    for n, index in enumerate(L.OUTER_LIPS):  # an ellipse around the centre
        a = 2 * np.pi * n / len(L.OUTER_LIPS)
        p[index, :2] = centre + (width / 2 * np.cos(a), (8 + open_by / 2) * np.sin(a))
    for n, index in enumerate(L.INNER_LIPS):
        a = 2 * np.pi * n / len(L.INNER_LIPS)
        p[index, :2] = centre + (width / 2.5 * np.cos(a), open_by / 2 * np.sin(a))
    p[L.LEFT, :2], p[L.RIGHT, :2] = centre - (width / 2, 0), centre + (width / 2, 0)
    p[L.UPPER, :2], p[L.LOWER, :2] = centre - (0, open_by / 2), centre + (0, open_by / 2)
    p[L.OUTER_UPPER, :2], p[L.OUTER_LOWER, :2] = centre - (0, 8 + open_by / 2), centre + (0, 8 + open_by / 2)
    for index in (L.UPPER, L.LOWER, L.OUTER_UPPER, L.OUTER_LOWER):
        p[index, 2] = -pout
    return p


def column(row, name):
    return row[L.COLUMNS.index(name)]


def test_measures_are_in_eye_distance_units_and_ignore_the_heads_tilt_size_and_place():
    row = L.lip_shape(face_points(open_by=20, pout=5))
    assert row.shape == (len(L.COLUMNS),)
    assert column(row, "inner_gap") == pytest.approx(0.2) and column(row, "width") == pytest.approx(0.4)
    assert column(row, "outer_gap") == pytest.approx(0.36) and column(row, "aperture") == pytest.approx(0.5)
    assert column(row, "protrusion") == pytest.approx(0.05)
    # the same face turned by 25 degrees, twice as big and elsewhere in the picture
    p = face_points(open_by=20, pout=5)
    a = np.radians(25)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = p.copy()
    moved[:, :2] = (p[:, :2] - 100) @ turn.T * 2 + (300, 40)
    moved[:, 2] *= 2
    np.testing.assert_allclose(L.lip_shape(moved), row, atol=1e-5)
    closed = L.lip_shape(face_points(open_by=0))
    assert column(closed, "inner_gap") == pytest.approx(0) and column(closed, "aperture") == pytest.approx(0)
    assert column(L.lip_shape(face_points(pout=-3)), "protrusion") < 0  # middles behind the corners


def test_shape_targets_fit_their_basis_on_the_given_clips_only():
    rng = np.random.default_rng(0)
    opening = rng.uniform(0, 30, 200)
    train = np.stack([L.lip_shape(face_points(open_by=o)) for o in opening])
    wide = np.stack([L.lip_shape(face_points(width=w)) for w in rng.uniform(30, 60, 50)])
    train[5] = np.nan  # no mesh on that frame
    targets = L.shape_targets({"t/a": train, "v/b": wide}, fit_keys=["t/a"])
    assert targets["t/a"].shape == (200, L.SHAPE_FEATURES) and targets["v/b"].shape == (50, L.SHAPE_FEATURES)
    assert np.isnan(targets["t/a"][5]).all() and np.isfinite(np.delete(targets["t/a"], 5, axis=0)).all()
    ok = np.isfinite(train[:, 0])
    first = targets["t/a"][ok, 4]  # PCA 1: fitted on opening alone, so it is the opening (either sign)
    assert abs(np.corrcoef(first, opening[ok])[0, 1]) > 0.99
    np.testing.assert_allclose(targets["t/a"][ok, :4], train[ok][:, 1:5], rtol=1e-6)  # gaps, width, protrusion
    np.testing.assert_allclose(targets["t/a"][ok, 4:].mean(axis=0), 0, atol=1e-5)  # centred on the fitted clips
    both = L.shape_targets({"t/a": train, "v/b": wide}, fit_keys=["t/a", "v/b"])
    assert np.abs(both["t/a"][ok, 4:].mean(axis=0)).max() > 0.01  # another fit, another centre
    with pytest.raises(ValueError, match="too few measured frames"):
        L.shape_targets({"t/a": train[:3]}, fit_keys=["t/a"])


def test_readers_name_the_missing_or_stale_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="lip_shape.py"):
        L.read_lip_shapes(tmp_path)
    np.savez(tmp_path / "lip_shape.npz", **{"a/b": np.zeros((4, 1), np.float32)})  # an old aperture-only file
    with pytest.raises(ValueError, match="a/b"):
        L.read_lip_shapes(tmp_path)
    np.savez(tmp_path / "lip_shape.npz", **{"a/b": np.zeros((4, len(L.COLUMNS)), np.float32)})
    assert L.read_lip_shapes(tmp_path)["a/b"].shape == (4, len(L.COLUMNS))
