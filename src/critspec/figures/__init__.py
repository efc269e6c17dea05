"""Phase 5 figures (spec/13_TABLES_AND_FIGURES.md): one function per figure returning a matplotlib
Figure, and `save_figure` writing its byte-stable PNG and PDF."""

from critspec.figures.crackling import crackling_gamma as crackling_gamma
from critspec.figures.raster import raster_example as raster_example
from critspec.figures.raster import rate_match as rate_match
from critspec.figures.render import save_figure as save_figure
from critspec.figures.summary import b_curves as b_curves
from critspec.figures.summary import chi_over_g as chi_over_g
from critspec.figures.summary import delta_b_nulls as delta_b_nulls
from critspec.figures.summary import gstar_selection as gstar_selection
