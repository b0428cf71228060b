//! brainscope: fMRI-to-image reconstruction experiments in the terminal.
