"""Batch augmentation on real digits: shapes kept, identity at zero, background stays black."""
import torch

from tinycnn.train.augment import AffineSpec, BatchLoader, affine_transform, random_affine


def digits(mnist, n=64):
    return torch.from_numpy(mnist.train_images[:n]).unsqueeze(1).float() / 255.0


def test_shape_and_dtype_are_kept(mnist):
    x = digits(mnist)
    out = random_affine(x, AffineSpec(degrees=15, translate=0.1, scale=0.1), torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)


def test_zero_rotation_is_identity(mnist):
    x = digits(mnist)
    n = len(x)
    out = affine_transform(x, torch.zeros(n), torch.zeros(n, 2), torch.ones(n))
    assert torch.allclose(out, x, atol=1e-5)


def test_background_stays_background(mnist):
    x = digits(mnist)
    assert (x[:, :, :2, :] == 0).all()  # MNIST digits leave the top rows black
    n = len(x)
    rotated = affine_transform(x, torch.full((n,), 30.0), torch.zeros(n, 2), torch.ones(n))
    # the corners were black and come from outside the image or black pixels: still black (0), not white
    assert rotated[:, :, :2, :2].abs().max() < 1e-6 and rotated[:, :, -2:, -2:].abs().max() < 1e-6
    assert rotated.min() >= 0 and rotated.max() <= 1.0 + 1e-6
    # the ink is kept: rotation moves strokes, it does not erase or add much of them
    ratio = rotated.sum() / x.sum()
    assert 0.9 < ratio < 1.1


def test_shift_moves_the_digit_the_stated_way(mnist):
    x = digits(mnist, 8)
    n = len(x)
    shifted = affine_transform(x, torch.zeros(n), torch.tensor([[0.125, 0.0]] * n), torch.ones(n))
    columns = torch.arange(28.0)

    def centre_x(images):
        mass = images.sum(dim=(1, 2))  # (N, 28) ink per column
        return (mass * columns).sum(1) / mass.sum(1)

    assert torch.allclose(centre_x(shifted) - centre_x(x), torch.full((n,), 3.5), atol=0.2)


def test_seeded_augmentation_repeats(mnist):
    x = digits(mnist)
    spec = AffineSpec(degrees=10, translate=0.1, scale=0.1)
    a = random_affine(x, spec, torch.Generator().manual_seed(3))
    b = random_affine(x, spec, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_loader_covers_every_image_once_per_epoch(mnist):
    images = torch.from_numpy(mnist.test_images[:1000])
    labels = torch.from_numpy(mnist.test_labels[:1000])
    loader = BatchLoader(images, labels, 128, 0.0, 1.0, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(batches) == len(loader) == 8
    assert sum(len(y) for _, y in batches) == 1000
    seen_labels = torch.cat([y for _, y in batches])
    assert torch.equal(torch.bincount(seen_labels), torch.bincount(labels))
    seen_pixels = torch.cat([x.flatten(1) for x, _ in batches]).sum(0)
    assert torch.allclose(seen_pixels, (images.float() / 255).flatten(1).sum(0), atol=1e-3)
