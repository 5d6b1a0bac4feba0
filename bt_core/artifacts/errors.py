"""The one exception of the run contract."""


class ArtifactError(Exception):
    """An artifact is missing, malformed or of an unsupported format version."""
