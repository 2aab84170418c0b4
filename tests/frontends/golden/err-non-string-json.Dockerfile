FROM alpine
CMD ["run", 8080]
