"The shipped base models: data directories read by `soft_grounding.models.base_model_dir`."
