"""Pure report builders: (spec, folded data, reference data) -> rows. Rendering is separate."""
