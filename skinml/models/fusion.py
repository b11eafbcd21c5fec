"""Metadata fusion: image features and patient metadata (age, sex, site) in one classifier.

As in the SIIM-ISIC 2020 winning solution (Ha et al., 2020), a timm backbone without its
classifier gives pooled image features, a small MLP embeds the metadata vector, and one
linear layer reads both. Keeping that last layer linear over
``[global-average-pooled features, metadata embedding]`` keeps class-activation maps
exact: logit_k = mean_hw(W_img_k · F) + (W_meta_k · e + b_k), so the CAM is
``W_img_k · F + (W_meta_k · e + b_k)`` — the image map plus a per-image constant from the
metadata — and its spatial mean is still the logit. For the same reason Grad-CAM of the
image path equals Grad-CAM of the whole model: the metadata term has no gradient with
respect to anything on the image path (:class:`ImagePathView`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Width of the metadata embedding (the MLP's hidden and output size).
DEFAULT_METADATA_HIDDEN = 64  # also the default of create_classifier


class MetadataFusionClassifier(nn.Module):
    """A timm backbone plus a metadata MLP, joined by one linear classifier.

    Args:
        backbone: a timm model whose classifier was removed (``reset_classifier(0)``).
        metadata_features: length of the encoded metadata vector.
        num_classes: number of output classes.
        metadata_hidden: width of the metadata embedding.
        metadata_dropout: dropout inside the metadata MLP (training only).
    """

    def __init__(
        self,
        backbone: nn.Module,
        metadata_features: int,
        num_classes: int,
        *,
        metadata_hidden: int = DEFAULT_METADATA_HIDDEN,
        metadata_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if metadata_features < 1:
            raise ValueError(f"metadata_features must be >= 1, got {metadata_features}")
        self.backbone = backbone
        self.metadata_features = int(metadata_features)
        self.metadata_hidden = int(metadata_hidden)
        self.num_classes = int(num_classes)
        self.num_image_features = int(backbone.num_features)
        # LayerNorm rather than BatchNorm: a last training batch of one sample must not fail.
        self.metadata_mlp = nn.Sequential(
            nn.Linear(self.metadata_features, self.metadata_hidden),
            nn.LayerNorm(self.metadata_hidden),
            nn.SiLU(),
            nn.Dropout(metadata_dropout),
            nn.Linear(self.metadata_hidden, self.metadata_hidden),
            nn.SiLU(),
        )
        self.classifier = nn.Linear(self.num_image_features + self.metadata_hidden, num_classes)
        # timm's preprocessing (mean/std/interpolation) is the backbone's
        self.pretrained_cfg = getattr(backbone, "pretrained_cfg", {})
        self.default_cfg = self.pretrained_cfg

    # -- what create_classifier and the bundle need ------------------------------------------
    def fusion_kwargs(self) -> dict[str, int]:
        """The ``create_classifier`` keywords that rebuild this architecture."""
        return {
            "metadata_features": self.metadata_features,
            "metadata_hidden": self.metadata_hidden,
        }

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def head_parameters(self) -> list[nn.Parameter]:
        """Newly initialised parameters (metadata MLP + classifier): trained at the head's rate."""
        return [*self.metadata_mlp.parameters(), *self.classifier.parameters()]

    # -- forward ------------------------------------------------------------------------------
    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map (N, C, H, W)."""
        return self.backbone.forward_features(image)

    def embed_metadata(self, metadata: torch.Tensor) -> torch.Tensor:
        return self.metadata_mlp(metadata)

    def forward_head(
        self, features: torch.Tensor, metadata: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor:
        pooled = self.backbone.forward_head(features, pre_logits=True)
        joint = torch.cat([pooled, self.embed_metadata(metadata)], dim=1)
        return joint if pre_logits else self.classifier(joint)

    def forward(self, image: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(image), metadata)

    # -- the logit decomposition used by CAM ---------------------------------------------------
    def image_weight(self) -> torch.Tensor:
        """Classifier weights over the image features, (classes, C)."""
        return self.classifier.weight[:, : self.num_image_features]

    def metadata_term(self, metadata: torch.Tensor) -> torch.Tensor:
        """Per image and class: ``W_meta · embedding + bias`` (N, classes), constant over space."""
        w_meta = self.classifier.weight[:, self.num_image_features :]
        term = self.embed_metadata(metadata) @ w_meta.t()
        return term + self.classifier.bias if self.classifier.bias is not None else term

    def image_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The image part of the logits, ``W_img · pooled`` (no metadata, no bias)."""
        pooled = self.backbone.forward_head(features, pre_logits=True)
        return pooled @ self.image_weight().t()


class ImagePathView(nn.Module):
    """The image path of a fusion model as a one-input classifier, for Grad-CAM.

    Its logits lack the metadata term, which is constant per image, so gradients with
    respect to any image-path activation — and hence Grad-CAM maps — are those of the full
    model. Pick the class to explain with the full model (with metadata).
    """

    def __init__(self, model: MetadataFusionClassifier) -> None:
        super().__init__()
        self.model = model
        self.pretrained_cfg = model.pretrained_cfg
        # a new Module starts in training mode; callers that restore "the" mode (Grad-CAM)
        # would otherwise switch the wrapped model to training (batch-norm batch statistics)
        self.train(model.training)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.image_logits(self.model.forward_features(image))


def wrap_with_metadata(
    backbone: Any, num_classes: int, metadata_features: int, **kwargs: Any
) -> MetadataFusionClassifier:
    """Drop a timm model's classifier and join it with a metadata MLP."""
    backbone.reset_classifier(0)
    return MetadataFusionClassifier(backbone, metadata_features, num_classes, **kwargs)


def is_fusion_model(model: Any) -> bool:
    """Whether ``model`` takes ``(image, metadata)`` (unwrapping DDP/EMA containers)."""
    inner = getattr(model, "module", model)
    return isinstance(inner, MetadataFusionClassifier)
