//! The `container.json` model: parsing and validation, no I/O.
