"""BatchNormalization knowledge: moving statistics, precise recalibration, the frozen probe."""
