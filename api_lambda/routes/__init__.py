"""One router per resource; `api_lambda.app` combines them."""
