"""The register of things (issue 18): assets' history, loans (keys included), stocktakes, supplies and
disposals. The asset itself is models.repair.Asset (repairs knew it first)."""

from models.assets.loans import AssetLoan
from models.assets.register import AssetEvent, AssetPhoto, Disposal
from models.assets.stocktake import Stocktake, StocktakeCheck, StocktakePhoto
from models.assets.supplies import Supply, SupplyMove

__all__ = ["AssetEvent", "AssetLoan", "AssetPhoto", "Disposal", "Stocktake", "StocktakeCheck", "StocktakePhoto", "Supply",
           "SupplyMove"]
