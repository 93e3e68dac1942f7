"""What an image is made of, for its software bill of materials: the components each layer
holds (`component`), and the documents written from them."""

from ocibuild.sbom.component import Component, file_component, written_file

__all__ = ["Component", "file_component", "written_file"]
