"""reconciler: keeps fiber-network documentation systems and ISP business systems in agreement.

The cycle per entity is fetch → normalize → diff → plan → apply → commit (see README and DESIGN).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
