"""The rules file: typed models (`model`), loading with every problem located (`load`),
the checks across sections (`checks`) and safe YAML with a line for every key
(`yamlsource`)."""
