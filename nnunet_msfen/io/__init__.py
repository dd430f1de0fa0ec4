"""Files in and out, one way for the whole package: atomic writes (``atomic``) and the checked image reader
(``images``)."""
