"""The gallery: a local web page to browse runs, watch training, curate favourites and play."""
