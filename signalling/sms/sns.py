"""Amazon SNS: direct-to-phone publish, marked transactional so it is not throttled as
marketing. boto3 blocks, so each publish runs in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from signalling.sms.base import SmsError, SmsMessage, log_sent


class SnsSmsSender:
    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        sender_id: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        # One attempt within the deadline: the call handler sees a failure and may retry.
        config = Config(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}
        )
        self._client = boto3.client(
            "sns", region_name=region, endpoint_url=endpoint_url, config=config
        )
        self._attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
        }
        if sender_id:
            self._attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": sender_id,
            }

    async def send(self, message: SmsMessage) -> None:
        try:
            await asyncio.to_thread(
                self._client.publish,
                PhoneNumber=message.to,
                Message=message.text,
                MessageAttributes=self._attributes,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SmsError(f"SNS refused the message ({code})") from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise SmsError("SNS did not answer in time") from None
        except BotoCoreError as exc:
            raise SmsError(f"cannot reach SNS ({type(exc).__name__})") from None
        log_sent("SNS", message)
