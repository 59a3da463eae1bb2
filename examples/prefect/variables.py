"""Variables: small named JSON values kept between runs."""

from prefect import flow
from prefect.variables import Variable


@flow
def configure() -> dict:
    Variable.set("batch_size", 500, overwrite=True)
    Variable.set("regions", ["eu", "us"], overwrite=True)
    batch = Variable.get("batch_size")
    regions = Variable.get("regions")
    missing = Variable.get("not_there", default="fallback")
    return {"batch": batch, "regions": regions, "missing": missing}


if __name__ == "__main__":
    print(configure())
    Variable.unset("regions")
    print(f"after unset: {Variable.get('regions', default=None)}")
