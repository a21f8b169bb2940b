"""The CPU lab images: root filesystems, wheels, assembly, probing."""
