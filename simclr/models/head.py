"""Projection heads g(·): h -> z, the space where the contrastive loss is applied."""

from __future__ import annotations

from torch import Tensor, nn

from simclr.errors import SimCLRError

HEADS: tuple[str, ...] = ("mlp", "linear", "none")


class ProjectionHead(nn.Module):
    """Maps features h [B, in_dim] to projections z [B, out_dim].

    ``mlp``: ``num_layers`` linear layers; every hidden one is followed by BatchNorm and
    ReLU, the output has neither (SimCLR v1 uses 2 layers, v2 uses 3). ``linear``: one
    linear layer. ``none``: z = h (the paper's ablation in Fig. 8).
    """

    def __init__(
        self,
        in_dim: int,
        kind: str = "mlp",
        num_layers: int = 2,
        hidden_dim: int | None = None,
        out_dim: int = 128,
    ) -> None:
        super().__init__()
        if kind not in HEADS:
            raise SimCLRError(f"unknown projection head '{kind}'; choose one of {', '.join(HEADS)}")
        if kind == "mlp" and num_layers < 1:
            raise SimCLRError(f"model.proj_layers must be >= 1, got {num_layers}")
        if out_dim < 1:
            raise SimCLRError(f"model.out_dim must be >= 1, got {out_dim}")
        hidden_dim = hidden_dim or in_dim
        self.kind = kind
        if kind == "none":
            self.layers: nn.Module = nn.Identity()
            self.out_dim = in_dim
            return
        if kind == "linear":
            num_layers = 1
        modules: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers - 1):
            # The bias is redundant before BatchNorm.
            modules += [nn.Linear(width, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(True)]
            width = hidden_dim
        modules.append(nn.Linear(width, out_dim))
        self.layers = nn.Sequential(*modules)
        self.out_dim = out_dim

    def forward(self, h: Tensor) -> Tensor:
        """h: [B, in_dim] -> z: [B, out_dim]."""
        return self.layers(h)
