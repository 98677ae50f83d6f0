"""ArchOLT connector (project-defined contract: /work/shared/apis/archolt.md)."""
