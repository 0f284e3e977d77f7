"""Input channels, one module per platform: wechat.py (Official Account), wecom.py (WeCom).

wechat_protocol.py holds the pure wire format (signatures, AES, XML), render.py turns bot
messages into WeChat text, wechat_api.py is the customer-service API client and store.py
the SQL state the channels share across processes.
"""
