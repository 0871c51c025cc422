import numpy as np

import cv2

from core.blend import BlendSettings, ColourMatch, composite, lips_mask, lower_face_mask


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


def lab(image):
    return cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(float)


def test_colour_match_takes_the_originals_shading_around_the_lips():
    # the original: skin lit from the right (a shadow on the left of the jaw); the patch: flat, paler
    ramp = np.linspace(0.6, 1.0, 96)[None, :, None]
    target = np.clip(np.array([60, 110, 190])[None, None] * ramp, 0, 255).astype(np.uint8).repeat(96, axis=0)
    patch = np.full((96, 96, 3), (120, 160, 225), np.uint8)
    mask = lower_face_mask((0, 0, 96, 96))
    lips = lips_mask((96, 96))
    matched = ColourMatch(patch, target, mask, lips)()
    skin = (mask > 0.5) & (lips == 0)
    before, after = (np.abs(lab(x) - lab(target))[skin].mean() for x in (patch, matched))
    assert after < before / 4
    # the shadow carries on across the pasted jaw (no seam): the jaw's left side stays darker than
    # its right by as much as in the original (a single colour shift would leave the patch flat)
    left, right = (skin & (np.arange(96) < 30)[None]), (skin & (np.arange(96) >= 66)[None])
    darker = lambda x: lab(x)[right][:, 0].mean() - lab(x)[left][:, 0].mean()
    assert abs(darker(matched) - darker(target)) < 0.3 * darker(target)


def test_colour_match_keeps_the_generated_opening_and_the_originals_lip_colour():
    skin, red_lips = (70, 120, 200), (70, 60, 170)  # BGR
    target = np.full((96, 96, 3), skin, np.uint8)
    cv2.ellipse(target, (48, 72), (16, 6), 0, 0, 360, red_lips, -1)  # closed red lips
    patch = np.full((96, 96, 3), skin, np.uint8)
    cv2.ellipse(patch, (48, 72), (16, 9), 0, 0, 360, (90, 30, 70), -1)  # an open, purple mouth
    mask, lips = lower_face_mask((0, 0, 96, 96)), lips_mask((96, 96))
    matched = lab(ColourMatch(patch, target, mask, lips)())
    centre = (slice(70, 75), slice(42, 55))
    assert abs(matched[centre][..., 0].mean() - lab(patch)[centre][..., 0].mean()) < 8  # still open, as dark
    hue = lambda x: np.degrees(np.arctan2(x[..., 2] - 128, x[..., 1] - 128)).mean()
    # purple has a blue (negative b) hue; the result takes the original mouth's red, not the patch's purple
    assert abs(hue(matched[centre]) - hue(lab(target)[centre])) < 15
    assert abs(hue(lab(patch)[centre]) - hue(lab(target)[centre])) > 30


def test_degenerate_box_is_left_alone():
    frame = np.zeros((10, 10, 3), np.uint8)
    composite(frame, np.full((96, 96, 3), 255, np.uint8), (5, 5, 6, 9))
    assert frame.max() == 0


def test_a_patch_with_real_detail_keeps_it_across_the_feather_and_leaves_the_outside_alone():
    from core.blend import crop_mask, paste_detailed_patch, paste_patch, paste_weight

    rng = np.random.default_rng(3)
    box = (40, 20, 240, 220)
    frame = rng.integers(90, 170, (260, 280, 3), dtype=np.uint8)  # one skin texture...
    patch = rng.integers(90, 170, (200, 200, 3), dtype=np.uint8)  # ...and another, as sharp
    small_mask = crop_mask(box, None, (96, 96))
    weight = paste_weight(box, None, (96, 96))
    feather = (weight > 0.2) & (weight < 0.8)

    def detail(result):
        crop = cv2.cvtColor(result[20:220, 40:240], cv2.COLOR_BGR2GRAY).astype(np.float32)
        return float(cv2.Laplacian(crop, cv2.CV_32F)[feather].var())

    own = detail(frame)
    crossfaded = detail(paste_patch(frame.copy(), patch, box, small_mask))
    low = cv2.GaussianBlur(patch, (0, 0), 2.0).astype(np.float32)
    detailed_frame = paste_detailed_patch(frame.copy(), low[100:], (patch - low)[100:], box, small_mask, 2.0)
    assert crossfaded < 0.7 * own  # two textures averaged into a blur
    assert detail(detailed_frame) > 0.85 * own
    outside = np.ones(frame.shape[:2], bool)
    outside[20:220, 40:240] = weight <= 0
    assert np.array_equal(detailed_frame[outside], frame[outside])


def test_the_lips_take_their_colour_from_the_mouth_given_and_none_of_the_originals_shape():
    # under a foreign dub the original's mouth opens and closes with the original speech: taking its
    # colour across the lips painted that speech under the generated mouth
    skin = (70, 120, 200)  # BGR
    closed, opened = (np.full((96, 96, 3), skin, np.uint8) for _ in range(2))
    cv2.ellipse(closed, (48, 72), (16, 3), 0, 0, 360, (70, 60, 170), -1)  # the original mouth, closed
    cv2.ellipse(opened, (48, 72), (16, 8), 0, 0, 360, (70, 60, 170), -1)  # and open, teeth showing
    cv2.ellipse(opened, (48, 72), (12, 5), 0, 0, 360, (235, 240, 240), -1)
    reference = np.full((96, 96, 3), skin, np.uint8)  # a quiet frame of the same actor: pink lips
    cv2.ellipse(reference, (48, 72), (16, 5), 0, 0, 360, (150, 110, 220), -1)
    patch = np.full((96, 96, 3), skin, np.uint8)
    cv2.ellipse(patch, (48, 72), (16, 9), 0, 0, 360, (90, 30, 70), -1)  # the generated mouth
    mask, lips = lower_face_mask((0, 0, 96, 96)), lips_mask((96, 96))
    assert lips[(opened != closed).any(axis=2)].all()  # the two originals differ across the lips only

    def matched(target, lip_colour):
        return ColourMatch(patch, target, mask, lips)(lip_colour).astype(np.int16)

    assert np.array_equal(matched(closed, reference), matched(opened, reference))
    assert np.abs(matched(closed, None) - matched(opened, None)).max() > 20  # the original's own lips
    centre = (slice(70, 75), slice(42, 55))
    chroma = lambda x: lab(x.astype(np.uint8))[centre][..., 1:].reshape(-1, 2).mean(axis=0)
    result = chroma(matched(opened, reference))
    assert np.linalg.norm(result - chroma(reference)) < 5 < 15 < np.linalg.norm(result - chroma(opened))
