from django_tasks import task


@task()
def train_recommendations_task() -> str:
    """Retrain recommendations on all purchases and store them."""
    from kequn.recommend.services import train_recommendations

    return train_recommendations(progress=False).model
