"""`histogram`: the tutorial's intensity histogram, each bin coloured by the colormap
at its centre (the centres normalised over the bins' span)."""

from __future__ import annotations

import numpy as np

from voxspec.model import HistogramPanel
from voxspec.render.common import colormap


def draw(panel: HistogramPanel, volumes, fig, slot):
    values = volumes[panel.volume].data.reshape(-1)
    ax = fig.add_subplot(slot)
    _, edges, patches = ax.hist(
        values, bins=panel.bins, range=panel.range, density=panel.density, log=panel.log
    )
    centres = 0.5 * (edges[:-1] + edges[1:])
    span = centres.max() - centres.min()
    shades = (centres - centres.min()) / span if span > 0 else np.zeros_like(centres)
    cmap = colormap(panel.colormap)
    for shade, patch in zip(shades, patches):
        patch.set_facecolor(cmap(shade))
    ax.set_xlabel("value")
    ax.set_ylabel("density" if panel.density else "count")
    if panel.title:
        ax.set_title(panel.title)
    return ax
