import pytest
import torch

from core.models.discriminator import DiscriminatorDims, QualityDiscriminator
from core.models.syncnet import SyncNet, SyncNetDims, sync_loss
from core.models.wav2lip import GeneratorDims, Wav2Lip


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("model,millions", [(Wav2Lip(), 36.30), (SyncNet(), 16.44), (QualityDiscriminator(), 14.11)])
def test_parameter_counts_match_the_official_models(model, millions):
    assert abs(n_params(model) / 1e6 - millions) < 0.01


def test_official_key_names_and_shapes():
    gen = Wav2Lip().state_dict()
    assert gen["face_encoder_blocks.0.0.conv_block.0.weight"].shape == (16, 6, 7, 7)
    assert gen["face_encoder_blocks.6.1.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert gen["audio_encoder.12.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert gen["face_decoder_blocks.1.0.conv_block.0.weight"].shape == (1024, 512, 3, 3)  # ConvTranspose: (in, out)
    assert gen["face_decoder_blocks.6.2.conv_block.1.running_var"].shape == (64,)
    assert gen["output_block.1.weight"].shape == (3, 32, 1, 1)
    assert "face_encoder_blocks.0.0.conv_block.1.num_batches_tracked" in gen
    sync = SyncNet().state_dict()
    assert sync["face_encoder.0.conv_block.0.weight"].shape == (32, 15, 7, 7)
    assert sync["face_encoder.16.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert sync["audio_encoder.13.conv_block.0.weight"].shape == (512, 512, 1, 1)
    disc = QualityDiscriminator().state_dict()
    assert disc["face_encoder_blocks.1.0.conv_block.0.weight"].shape == (64, 32, 5, 5)
    assert disc["binary_pred.0.weight"].shape == (1, 512, 1, 1)
    assert not any("running_mean" in k for k in disc)  # no normalisation in the discriminator


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
def test_generator_shapes(width):
    gen = Wav2Lip(GeneratorDims(width=width)).eval()
    with torch.no_grad():
        out = gen(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
        assert out.shape == (2, 3, 96, 96)
        assert 0 <= out.min() and out.max() <= 1
        seq = gen(torch.randn(2, 5, 1, 80, 16), torch.rand(2, 5, 6, 96, 96))
        assert seq.shape == (2, 5, 3, 96, 96)


def decoder_work(gen: Wav2Lip, first_row: int) -> int:
    """Multiply-adds of the convolutions one forward pass runs (each output value: cin · k² of them)."""
    work = []
    hook = lambda conv, _, out: work.append(out.numel() * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])  # noqa: E731
    handles = [m.register_forward_hook(hook) for m in gen.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        gen(torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96), first_row)
    for handle in handles:
        handle.remove()
    return sum(work)


@pytest.mark.parametrize("first_row", [1, 30, 47, 48, 70, 95])
def test_the_generator_computes_the_rows_asked_for_as_the_whole_picture_has_them(first_row):
    torch.manual_seed(0)
    gen = Wav2Lip(GeneratorDims(width=0.25)).eval()
    for bn in (m for m in gen.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity of a new model
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    mel, faces = torch.randn(3, 1, 80, 16), torch.rand(3, 6, 96, 96)
    with torch.no_grad():
        whole, rows = gen(mel, faces), gen(mel, faces, first_row)
    assert rows.shape == (3, 3, 96 - first_row, 96)
    assert torch.allclose(rows, whole[:, :, first_row:], atol=1e-6)


def test_the_lower_half_alone_skips_a_third_of_the_generators_work():
    gen = Wav2Lip().eval()
    assert decoder_work(gen, 48) < 0.72 * decoder_work(gen, 0)


def test_width_multiplier_shrinks_the_model():
    assert n_params(Wav2Lip(GeneratorDims(width=0.5))) < 0.3 * n_params(Wav2Lip())
    assert n_params(SyncNet(SyncNetDims(width=0.5))) < 0.3 * n_params(SyncNet())


def test_syncnet_embeddings_are_normalised_and_loss_is_finite():
    net = SyncNet(SyncNetDims(width=0.25)).eval()
    audio, face = net(torch.randn(3, 1, 80, 16), torch.rand(3, 15, 48, 96))
    assert audio.shape == face.shape == (3, int(round(512 * 0.25)))
    assert torch.allclose(audio.norm(dim=1), torch.ones(3), atol=1e-5)
    loss = sync_loss(audio, face, torch.tensor([1, 0, 1]))
    assert torch.isfinite(loss) and loss > 0


def test_discriminator_takes_lower_half_of_full_faces():
    disc = QualityDiscriminator(DiscriminatorDims(width=0.25)).eval()
    faces = torch.rand(2, 3, 96, 96)
    changed_top = faces.clone()
    changed_top[:, :, :48] = 0  # the upper half must not matter
    with torch.no_grad():
        assert torch.allclose(disc(faces), disc(changed_top))
        assert disc(torch.rand(2, 4, 3, 96, 96)).shape == (8, 1)


def test_generator_output_depends_on_audio_and_reference():
    gen = Wav2Lip(GeneratorDims(width=0.25)).eval()
    mel = torch.randn(1, 1, 80, 16, requires_grad=True)
    faces = torch.rand(1, 6, 96, 96, requires_grad=True)
    gen(mel, faces).sum().backward()
    assert mel.grad.abs().sum() > 0
    assert faces.grad[:, 3:].abs().sum() > 0  # the reference frame feeds the output


def test_offset_losses_reward_matching_offsets_and_punish_others():
    from core.models.syncnet import offset_losses
    faces = torch.nn.functional.normalize(torch.eye(16)[None].repeat(2, 1, 1) + 0.01, dim=-1)  # orthogonal windows
    bce_sync, nce_sync = offset_losses(faces.clone(), faces)
    shifted = faces.roll(4, dims=1)  # every face window paired with the mel 4 frames off
    bce_off, nce_off = offset_losses(shifted, faces)
    assert bce_sync < 0.05 and nce_sync < 0.01
    assert bce_off > 1.0 and nce_off > 3.0


def test_offset_losses_ignore_the_neighbouring_offsets():
    from core.models.syncnet import offset_losses
    g = torch.Generator().manual_seed(0)
    audio = torch.nn.functional.normalize(torch.rand(3, 12, 32, generator=g), dim=-1)
    # each face window looks like its own mel and, almost as much, the next frame's
    faces = torch.nn.functional.normalize(audio + 0.9 * audio.roll(-1, dims=1), dim=-1)
    masked, unmasked = offset_losses(audio, faces, near=1)[1], offset_losses(audio, faces, near=0)[1]
    assert masked < unmasked - 0.1
    # with neighbours that look like nothing in particular, the mask changes little
    plain = torch.nn.functional.normalize(torch.eye(12)[None].repeat(3, 1, 1) + 0.01, dim=-1)
    assert abs(offset_losses(plain, plain, near=1)[1] - offset_losses(plain, plain, near=0)[1]) < 0.01
