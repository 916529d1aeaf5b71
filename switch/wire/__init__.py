"""Sans-I/O wire layer: framing and codecs. No trio and no sqlalchemy in this package."""
