"""The console's views: pure functions from the data :mod:`..reader` gathers to HTML, one
module per kind of resource (the page frame and shared pieces are :mod:`..pages`)."""
