import numpy as np

from core.blend import BlendSettings, composite, lower_face_mask, match_colour


def test_mask_covers_mouth_and_spares_the_eyes():
    box = (0, 0, 120, 120)
    landmarks = np.array([[40, 45], [80, 45], [60, 65], [45, 90], [75, 90]], np.float32)
    mask = lower_face_mask(box, landmarks)
    assert mask.shape == (120, 120)
    assert mask[92, 60] > 0.9  # the mouth
    assert mask[:60].max() < 1e-6  # nothing above the crop's middle (eyes, nose bridge)
    assert mask[119, 0] < 0.05 and mask[119, 119] < 0.05  # corners stay original


def test_mask_edges_are_feathered_not_hard():
    mask = lower_face_mask((0, 0, 200, 200))
    row = mask[150]
    steps = np.abs(np.diff(row))
    assert steps.max() < 0.1  # no step that would show as a seam
    assert row.max() > 0.9


def test_composite_changes_only_the_masked_region():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    original = frame.copy()
    generated = np.full((96, 96, 3), 128, np.uint8)
    composite(frame, generated, (100, 60, 200, 160), settings=BlendSettings(color_match=False))
    changed = np.any(frame != original, axis=2)
    assert changed[135:150, 140:160].all()  # the mouth area was replaced
    assert not changed[:60].any() and not changed[:, :100].any()  # outside the box untouched
    assert not changed[60:110].any()  # the upper half of the crop untouched


def test_colour_match_moves_the_patch_towards_the_skin():
    target = np.full((50, 50, 3), (60, 110, 190), np.uint8)  # skin-ish BGR
    patch = np.full((50, 50, 3), (90, 140, 220), np.uint8)
    mask = np.ones((50, 50), np.float32)
    matched = match_colour(patch, target, mask)
    assert np.abs(matched.astype(int) - target).mean() < np.abs(patch.astype(int) - target).mean() / 4


def test_degenerate_box_is_left_alone():
    frame = np.zeros((10, 10, 3), np.uint8)
    composite(frame, np.full((96, 96, 3), 255, np.uint8), (5, 5, 6, 9))
    assert frame.max() == 0
