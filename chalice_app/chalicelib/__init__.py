"""HTTP <-> services mapping for the trainset API; each module is one Blueprint."""
