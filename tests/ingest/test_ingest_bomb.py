"""Issue 15: Pillow's own decompression-bomb limit rejects one file, never the whole ingest.

The other ingest tests lower skinml's ``max_pixels`` below their oversize image,
so they never meet Pillow's limit; here skinml's limit stays at its default and
Pillow's (``Image.MAX_IMAGE_PIXELS``) is the lower one, as for a real 200 MP bomb.
"""

from __future__ import annotations

from PIL import Image

from skinml.ingest import IngestConfig, run_ingest


def test_pillow_bomb_error_is_one_rejected_row(deliveries, tmp_path, monkeypatch, sim) -> None:
    Image.new("1", (600, 500)).save(deliveries.north / "nevus" / "bomb.png")  # 300k pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # Pillow errors above 200k
    result = run_ingest(
        [deliveries.north], tmp_path / "ds", sim.KEY, IngestConfig(workers=1), progress=False
    )
    rejected = result.rejected.set_index("source")
    assert "decompression bomb" in rejected.loc["nevus/bomb.png", "reason"]
    assert len(result.manifest) > 0  # the rest of the delivery was ingested
