from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AskOptions(_message.Message):
    __slots__ = ("app", "top_k", "pins", "record", "crops", "conf", "gallery", "keep_uncertain")
    class PinsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APP_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    PINS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    CROPS_FIELD_NUMBER: _ClassVar[int]
    CONF_FIELD_NUMBER: _ClassVar[int]
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    KEEP_UNCERTAIN_FIELD_NUMBER: _ClassVar[int]
    app: str
    top_k: int
    pins: _containers.ScalarMap[str, str]
    record: bool
    crops: bool
    conf: float
    gallery: str
    keep_uncertain: float
    def __init__(self, app: _Optional[str] = ..., top_k: _Optional[int] = ..., pins: _Optional[_Mapping[str, str]] = ..., record: _Optional[bool] = ..., crops: _Optional[bool] = ..., conf: _Optional[float] = ..., gallery: _Optional[str] = ..., keep_uncertain: _Optional[float] = ...) -> None: ...

class AskHeader(_message.Message):
    __slots__ = ("question", "options", "request_id", "total_bytes")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    question: str
    options: AskOptions
    request_id: str
    total_bytes: int
    def __init__(self, question: _Optional[str] = ..., options: _Optional[_Union[AskOptions, _Mapping]] = ..., request_id: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: AskHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[AskHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("request_id", "question", "image", "options")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    question: str
    image: bytes
    options: AskOptions
    def __init__(self, request_id: _Optional[str] = ..., question: _Optional[str] = ..., image: _Optional[bytes] = ..., options: _Optional[_Union[AskOptions, _Mapping]] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("request_id", "answer_json", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    answer_json: str
    error: AnswerError
    def __init__(self, request_id: _Optional[str] = ..., answer_json: _Optional[str] = ..., error: _Optional[_Union[AnswerError, _Mapping]] = ...) -> None: ...

class AnswerError(_message.Message):
    __slots__ = ("code", "http_status", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    http_status: int
    message: str
    def __init__(self, code: _Optional[str] = ..., http_status: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
