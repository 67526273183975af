"""The decision engine: rules compiled against the data (`compile`), the built-in values of
a customer on a day (`builtins`), and the hops that move customers (`decide`)."""
