"""Company accounts and contacts, deal pipelines and forecast, activities and tasks, the lead pool."""
