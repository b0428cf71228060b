//! Loading hub folders (config.json + safetensors) into burn modules, with checked key remapping.
