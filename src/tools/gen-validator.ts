// Placeholder until the validator generator lands.
